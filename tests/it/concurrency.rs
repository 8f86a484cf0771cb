//! Two app instances on one database, racing: no duplicate users, no lost
//! membership changes, no spurious failures for clients that send no ETag.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{backends, spawn_app, spawn_app_on};
use crate::scim_crud::{Scim, entra_user};

#[tokio::test]
async fn racing_creates_of_one_user_name_across_two_instances_make_exactly_one_user() {
    for backend in backends() {
        let a = spawn_app(backend).await;
        let b = spawn_app_on(a.db.shared(), |_| {}).await;
        let (_, token) = a.org_with_token("Acme").await;
        let sa = Scim {
            app: &a,
            token: token.clone(),
        };
        let sb = Scim { app: &b, token };
        let attempts = (0..16).map(|i| {
            let s = if i % 2 == 0 { &sa } else { &sb };
            s.post("/Users", entra_user("race@acme.example"))
        });
        let statuses: Vec<u16> = join_all(attempts)
            .await
            .into_iter()
            .map(|(st, _)| st)
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{backend:?} {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "{backend:?} {statuses:?}"
        );
        let (_, list) = sa.get("/Users?count=0").await;
        assert_eq!(list["totalResults"], 1);
    }
}

#[tokio::test]
async fn concurrent_membership_patches_across_two_instances_are_all_kept() {
    for backend in backends() {
        let a = spawn_app(backend).await;
        let b = spawn_app_on(a.db.shared(), |_| {}).await;
        let (_, token) = a.org_with_token("Acme").await;
        let sa = Scim {
            app: &a,
            token: token.clone(),
        };
        let sb = Scim { app: &b, token };
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                sa.post("/Users", entra_user(&format!("m{i}@acme.example")))
                    .await
                    .1["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let (_, g) = sa.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All"})).await;
        let path = format!("/Groups/{}", g["id"].as_str().unwrap());
        let patches = ids.iter().enumerate().map(|(i, id)| {
            let s = if i % 2 == 0 { &sa } else { &sb };
            let path = path.clone();
            async move {
                s.patch(
                    &path,
                    json!([{"op": "Add", "path": "members", "value": [{"value": id}]}]),
                )
                .await
                .0
            }
        });
        let statuses = join_all(patches).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{backend:?} {statuses:?}"
        );
        let (_, g) = sb.get(&path).await;
        assert_eq!(g["members"].as_array().unwrap().len(), 20, "{backend:?}");
        assert_eq!(
            g["meta"]["version"], "W/\"21\"",
            "every change counted once"
        );
        // Racing updates of one user without If-Match all succeed, one after another.
        let user = format!("/Users/{}", ids[0]);
        let titles = (0..10).map(|i| {
            let s = if i % 2 == 0 { &sa } else { &sb };
            let user = user.clone();
            async move {
                s.patch(
                    &user,
                    json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]),
                )
                .await
                .0
            }
        });
        let statuses = join_all(titles).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{backend:?} {statuses:?}"
        );
        assert_eq!(sa.get(&user).await.1["meta"]["version"], "W/\"11\"");
    }
}

#[tokio::test]
async fn racing_deactivations_and_reactivations_never_fail_while_mail_goes_out() {
    for backend in backends() {
        let a = spawn_app(backend).await;
        let b = spawn_app_on(a.db.shared(), |_| {}).await;
        let (_, token) = a.org_with_token("Acme").await;
        let sa = Scim {
            app: &a,
            token: token.clone(),
        };
        let sb = Scim { app: &b, token };
        let mut paths = Vec::new();
        for i in 0..4 {
            let (_, u) = sa
                .post("/Users", entra_user(&format!("t{i}@acme.example")))
                .await;
            paths.push(format!("/Users/{}", u["id"].as_str().unwrap()));
        }
        let toggles = (0..60).map(|i| {
            let s = if i % 2 == 0 { &sa } else { &sb };
            let path = paths[i % paths.len()].clone();
            let value = if (i / paths.len()) % 2 == 0 {
                "False"
            } else {
                "True"
            };
            async move {
                s.patch(
                    &path,
                    json!([{"op": "Replace", "path": "active", "value": value}]),
                )
                .await
                .0
            }
        });
        let statuses = join_all(toggles).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{backend:?} {statuses:?}"
        );
    }
}
