//! Hostile and oversized input (issue #9): every request's cost is bounded,
//! one client cannot stall or break another's requests, and nothing is left
//! behind. Each test runs on SQLite and, when asked, PostgreSQL.

use std::time::Duration;

use futures_util::future::join_all;
use onramp::store::invitations::InvitationStatus;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, backends, spawn_app, spawn_app_on};
use crate::scim_crud::{entra_user, scim};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const MAX_VALUES: usize = onramp::scim::protocol::MAX_VALUES;

/// `n` values of the multi-valued user attribute `attr`, each distinct.
fn values(attr: &str, n: usize) -> Value {
    let item = |i: usize| match attr {
        "emails" => json!({"value": format!("a{i}@acme.example"), "type": "other"}),
        "phoneNumbers" => json!({"value": format!("+1555000{i:04}"), "type": "work"}),
        "addresses" => json!({"streetAddress": format!("{i} Main St"), "type": "work"}),
        "x509Certificates" => json!({"value": format!("TUlJQ{i}")}),
        _ => json!({"value": format!("{attr}-{i}")}),
    };
    Value::Array((0..n).map(item).collect())
}

const MULTI: &[&str] = &[
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "entitlements",
    "x509Certificates",
    "ims",
    "photos",
];

#[tokio::test]
async fn every_multi_valued_attribute_holds_its_limit_and_refuses_one_more() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        for (i, attr) in MULTI.iter().enumerate() {
            let mut body = json!({"schemas": [USER], "userName": format!("full{i}@acme.example")});
            body[attr] = values(attr, MAX_VALUES);
            let (st, created) = s.post("/Users", body.clone()).await;
            assert_eq!(st, 201, "{backend:?} {attr}: {created}");
            assert_eq!(created[attr].as_array().unwrap().len(), MAX_VALUES);

            body["userName"] = json!(format!("over{i}@acme.example"));
            body[attr] = values(attr, MAX_VALUES + 1);
            let (st, err) = s.post("/Users", body).await;
            assert_eq!(st, 400, "{backend:?} {attr}: {err}");
            assert_eq!(err["scimType"], "invalidValue");
            assert!(err["detail"].as_str().unwrap().contains(attr), "{err}");

            // One more by PATCH, in any shape, is refused the same way.
            let path = format!("/Users/{}", created["id"].as_str().unwrap());
            let one_more = values(attr, MAX_VALUES + 1)[MAX_VALUES].clone();
            for ops in [
                json!([{"op": "add", "path": attr, "value": [one_more.clone()]}]),
                json!([{"op": "add", "value": {*attr: [one_more.clone()]}}]),
                json!([{"op": "replace", "path": attr, "value": values(attr, MAX_VALUES + 1)}]),
            ] {
                let (st, err) = s.patch(&path, ops).await;
                assert_eq!(st, 400, "{backend:?} {attr}: {err}");
            }
            // Nothing was half-written.
            let (_, stored) = s.get(&path).await;
            assert_eq!(stored[attr].as_array().unwrap().len(), MAX_VALUES);
        }
    }
}

#[tokio::test]
async fn merging_and_removing_a_full_list_keeps_one_of_each_value() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, u) = s
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "merge@acme.example", "emails": values("emails", MAX_VALUES), "roles": values("roles", MAX_VALUES)}),
            )
            .await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        // The same values again (emails differently cased) merge into the
        // ones there: nothing is added.
        let shouted: Vec<Value> = values("emails", MAX_VALUES)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| json!({"value": e["value"].as_str().unwrap().to_uppercase(), "type": "other", "display": "x"}))
            .collect();
        let (st, patched) = s
            .patch(
                &path,
                json!([
                    {"op": "add", "path": "emails", "value": shouted},
                    {"op": "add", "path": "roles", "value": values("roles", MAX_VALUES)},
                ]),
            )
            .await;
        assert_eq!(st, 200, "{backend:?}: {patched}");
        assert_eq!(patched["emails"].as_array().unwrap().len(), MAX_VALUES);
        assert_eq!(
            patched["emails"][0]["display"], "x",
            "merged into the old value"
        );
        assert_eq!(patched["roles"].as_array().unwrap().len(), MAX_VALUES);
        // Removing a list of values removes exactly those.
        let half: Vec<Value> =
            values("roles", MAX_VALUES).as_array().unwrap()[..MAX_VALUES / 2].to_vec();
        let (st, patched) = s
            .patch(
                &path,
                json!([{"op": "remove", "path": "roles", "value": half}]),
            )
            .await;
        assert_eq!(st, 200, "{backend:?}: {patched}");
        let left = patched["roles"].as_array().unwrap();
        assert_eq!(left.len(), MAX_VALUES / 2);
        assert_eq!(left[0]["value"], format!("roles-{}", MAX_VALUES / 2));
    }
}

#[tokio::test]
async fn a_user_with_the_most_emails_can_still_be_deactivated_and_its_link_dies() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let mut emails = values("emails", MAX_VALUES);
        emails[0] = json!({"value": "most@acme.example", "type": "work", "primary": true});
        let (st, u) = s
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "most@acme.example", "emails": emails}),
            )
            .await;
        assert_eq!(st, 201, "{backend:?}: {u}");
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        let (st, body) = s
            .patch(
                &path,
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await;
        assert_eq!(st, 200, "{backend:?}: {body}");
        let invs = app.store.list_invitations(org, None, 10).await.unwrap();
        assert_eq!(invs[0].status, InvitationStatus::Revoked, "{backend:?}");
    }
}

#[tokio::test]
async fn a_request_naming_more_members_than_the_limit_is_refused_and_changes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, g) = s
            .post(
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Big"}),
            )
            .await;
        let path = format!("/Groups/{}", g["id"].as_str().unwrap());
        let limit = onramp::scim::protocol::MAX_MEMBERS_PER_REQUEST;
        let many: Vec<Value> = (0..=limit)
            .map(|_| json!({"value": uuid::Uuid::now_v7().to_string()}))
            .collect();
        let (st, err) = s
            .patch(
                &path,
                json!([{"op": "add", "path": "members", "value": many}]),
            )
            .await;
        assert_eq!(st, 400, "{backend:?}: {err}");
        assert_eq!(err["scimType"], "invalidValue");
        // Spread over operations, it is the same request.
        let half: Vec<Value> = (0..limit / 2 + 1)
            .map(|_| json!({"value": uuid::Uuid::now_v7().to_string()}))
            .collect();
        let (st, _) = s
            .patch(
                &path,
                json!([
                    {"op": "add", "path": "members", "value": half.clone()},
                    {"op": "remove", "path": "members", "value": half},
                ]),
            )
            .await;
        assert_eq!(st, 400, "{backend:?}");
        let (_, g) = s.get(&path).await;
        assert_eq!(g["meta"]["version"], "W/\"1\"", "nothing changed");
    }
}

/// Failure injection: a trigger makes the database refuse some writes, as a
/// full disk or a bug would. SQLite's `RAISE(ROLLBACK)` even ends the whole
/// transaction the failing batch shares with others.
async fn inject_faults(db: &TestDb) {
    // The tables first.
    db.store().await.close().await;
    db.execute(
        "CREATE TRIGGER inject_abort BEFORE INSERT ON scim_users WHEN NEW.user_name LIKE 'boom%' \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END; \
         CREATE TRIGGER inject_rollback BEFORE INSERT ON scim_users WHEN NEW.user_name LIKE 'crash%' \
         BEGIN SELECT RAISE(ROLLBACK, 'injected fault'); END;",
        "CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.user_name LIKE 'boom%' OR NEW.user_name LIKE 'crash%' THEN \
         RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER inject_fault BEFORE INSERT ON scim_users FOR EACH ROW EXECUTE FUNCTION inject_fault();",
    )
    .await;
}

#[tokio::test]
async fn a_write_that_fails_for_any_reason_fails_alone_and_its_neighbours_commit() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        inject_faults(&db).await;
        let app = spawn_app_on(db, |c| c.mail.outbox.enabled = false).await;
        let (noisy, _) = scim(&app, "Noisy").await;
        let (quiet, quiet_org) = scim(&app, "Quiet").await;
        let bad = (0..40).map(|i| {
            let name = if i % 2 == 0 {
                format!("boom{i}@noisy.example")
            } else {
                format!("crash{i}@noisy.example")
            };
            let s = &noisy;
            async move { s.post("/Users", entra_user(&name)).await.0 }
        });
        let good = (0..80).map(|i| {
            let s = &quiet;
            async move {
                s.post("/Users", entra_user(&format!("q{i}@quiet.example")))
                    .await
                    .0
            }
        });
        let (bad, good) = tokio::join!(join_all(bad), join_all(good));
        assert!(good.iter().all(|s| *s == 201), "{backend:?}: {good:?}");
        assert!(bad.iter().all(|s| *s == 500), "{backend:?}: {bad:?}");
        let (_, list) = quiet.get("/Users?count=0").await;
        assert_eq!(list["totalResults"], 80, "{backend:?}");
        let (_, list) = noisy.get("/Users?count=0").await;
        assert_eq!(list["totalResults"], 0, "{backend:?}: nothing half-written");
        assert_eq!(
            app.store
                .list_invitations(quiet_org, None, 1000)
                .await
                .unwrap()
                .len(),
            80,
            "every good create kept its invitation"
        );
    }
}

#[tokio::test]
async fn passwords_are_bounded_in_length_and_in_how_many_a_bulk_request_sets() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let max = onramp::secrets::password::MAX_LEN;
        let mut body = entra_user("long@acme.example");
        body["password"] = json!("p".repeat(max + 1));
        let (st, err) = s.post("/Users", body.clone()).await;
        assert_eq!(st, 400, "{backend:?}: {err}");
        assert_eq!(err["scimType"], "invalidValue");
        body["password"] = json!("p".repeat(max));
        let (st, u) = s.post("/Users", body).await;
        assert_eq!(st, 201, "{backend:?}");
        assert!(u.get("password").is_none(), "never returned");
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        let (st, _) = s
            .patch(
                &path,
                json!([{"op": "replace", "path": "password", "value": "x".repeat(max + 1)}]),
            )
            .await;
        assert_eq!(st, 400, "{backend:?}");

        let ops: Vec<Value> = (0..onramp::scim::MAX_BULK_PASSWORDS + 1)
            .map(|i| {
                let mut u = entra_user(&format!("b{i}@acme.example"));
                u["password"] = json!("correct horse battery staple");
                json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": u})
            })
            .collect();
        let (st, err) = s
            .post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
            )
            .await;
        assert_eq!(st, 400, "{backend:?}: {err}");
        let (_, list) = s.get("/Users?count=0").await;
        assert_eq!(
            list["totalResults"], 1,
            "the refused request created nobody"
        );
    }
}

#[tokio::test]
async fn many_passwords_at_once_all_succeed_one_hash_at_a_time_per_organization() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, _) = scim(&app, "A").await;
        let (b, _) = scim(&app, "B").await;
        let creates = (0..12).map(|i| {
            let s = if i % 3 == 0 { &b } else { &a };
            async move {
                let mut u = entra_user(&format!("p{i}@acme.example"));
                u["password"] = json!(format!("secret number {i}"));
                s.post("/Users", u).await.0
            }
        });
        let statuses = join_all(creates).await;
        assert!(
            statuses.iter().all(|s| *s == 201),
            "{backend:?} {statuses:?}"
        );
    }
}

#[tokio::test]
async fn a_bulk_id_used_twice_is_refused_before_anything_runs() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (st, err) = s
            .post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "same", "data": entra_user("one@acme.example")},
                    {"method": "POST", "path": "/Users", "bulkId": "same", "data": entra_user("two@acme.example")},
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G", "members": [{"value": "bulkId:same"}]}}
                ]}),
            )
            .await;
        assert_eq!(st, 400, "{backend:?}: {err}");
        assert_eq!(err["scimType"], "invalidValue");
        let (_, list) = s.get("/Users?count=0").await;
        assert_eq!(list["totalResults"], 0);
    }
}

#[tokio::test]
async fn a_query_string_that_is_not_utf8_is_a_bad_request() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        for query in [
            "filter=userName%20eq%20%22%FF%FE%22",
            "attributes=%C3",
            "filter=%zz",
        ] {
            let (st, err) = s.get(&format!("/Users?{query}")).await;
            assert_eq!(st, 400, "{backend:?} {query}: {err}");
            assert_eq!(err["scimType"], "invalidValue");
        }
    }
}

async fn scrape(app: &TestApp, port: u16, token: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn metric_labels_come_only_from_known_methods_and_route_templates() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let long = "Q".repeat(2000);
        for i in 0..50 {
            let method = reqwest::Method::from_bytes(format!("BREW{i}{long}").as_bytes()).unwrap();
            let _ = app
                .client
                .request(method, app.url(&format!("/nope/{i}/{long}")))
                .send()
                .await
                .unwrap();
            let _ = s.get(&format!("/Users/{}", uuid::Uuid::now_v7())).await;
        }
        let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
        let (st, text) = scrape(&app, port, None).await;
        assert_eq!(st, 200);
        assert!(
            !text.contains("BREW"),
            "{backend:?}: no made-up method is a label"
        );
        assert!(
            !text.contains("QQQQ") && !text.contains("/nope"),
            "no raw path is a label"
        );
        assert!(text.contains("method=\"other\""), "{text}");
        assert!(text.contains("route=\"/scim/v2/Users/{id}\""), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with("onramp_http_requests_total"))
            .count();
        assert!(series < 10, "{backend:?}: {series} series");
        assert!(text.len() < 64 * 1024, "one scrape stays small");
    }
}

#[tokio::test]
async fn metrics_can_require_a_token_and_have_a_listener_of_their_own() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = spawn_app_on(db, |c| {
            c.metrics.token = "metrics-secret-1".to_string().into();
            c.metrics.bind = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
        let main: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
        let own = app.metrics_port.expect("a metrics listener");
        assert_ne!(main, own);
        assert_eq!(
            scrape(&app, main, Some("metrics-secret-1")).await.0,
            404,
            "{backend:?}: not on the main port"
        );
        assert_eq!(scrape(&app, own, None).await.0, 401);
        assert_eq!(scrape(&app, own, Some("wrong")).await.0, 401);
        let (st, text) = scrape(&app, own, Some("metrics-secret-1")).await;
        assert_eq!(st, 200);
        assert!(text.contains("onramp_db_pool_connections"), "{text}");
    }
}

#[tokio::test]
async fn mail_files_are_private_and_unfinished_ones_are_removed_at_start() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".inv-x@localhost.eml.0000.tmp");
        std::fs::write(
            &leftover,
            "Subject: a live link\n\nhttp://127.0.0.1/join/inv_secret",
        )
        .unwrap();
        let mail_dir = dir.path().to_path_buf();
        let app = spawn_app_on(db, move |c| c.mail.dir = mail_dir).await;
        assert!(!leftover.exists(), "{backend:?}: removed at start");
        let (s, _) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("file@acme.example")).await;
        let mut written = None;
        for _ in 0..200 {
            written = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().ends_with(".eml"));
            if written.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let written = written.expect("the invitation was written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = written.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{backend:?}: owner only");
        }
    }
}

/// Reads the link out of the newest invitation mail for `to` (folder transport).
async fn link_in_mail(app: &TestApp, to: &str, nth: usize) -> String {
    for _ in 0..200 {
        let mut found: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(app.mail_dir.path())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    let parsed = crate::smtp_sink::parse(text.as_bytes());
                    if !parsed.header("To").unwrap_or_default().contains(to) {
                        return None;
                    }
                    let link = crate::smtp_sink::join_link(parsed.text.as_deref()?)?;
                    Some((e.metadata().ok()?.modified().ok()?, link))
                })
                .collect();
        found.sort();
        if found.len() > nth {
            return found[nth].1.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no invitation mail {nth} to {to}");
}

async fn open(app: &TestApp, link: &str) -> u16 {
    let path = link
        .split_once("/join/")
        .map(|(_, t)| format!("/join/{t}"))
        .unwrap();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    c.get(app.url(&path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn opening_a_link_again_and_again_keeps_a_few_sessions_and_expired_ones_are_purged() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("often@acme.example")).await;
        let link = link_in_mail(&app, "often@acme.example", 0).await;
        for _ in 0..30 {
            assert_eq!(open(&app, &link).await, 303, "{backend:?}");
        }
        let kept = app.db.count("SELECT COUNT(*) FROM join_sessions").await;
        assert_eq!(
            kept,
            onramp::store::invitations::MAX_JOIN_SESSIONS,
            "{backend:?}"
        );
        // Expired sessions go in the housekeeping round.
        app.db
            .execute(
                "UPDATE join_sessions SET expires_at = 0",
                "UPDATE join_sessions SET expires_at = now() - interval '1 second'",
            )
            .await;
        let purged = onramp::housekeeping::purge(&app.store).await.unwrap();
        assert_eq!(purged as i64, kept, "{backend:?}");
        assert_eq!(app.db.count("SELECT COUNT(*) FROM join_sessions").await, 0);
    }
}

#[tokio::test]
async fn asking_for_the_link_again_never_takes_away_the_one_already_held() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("held@acme.example")).await;
        let first = link_in_mail(&app, "held@acme.example", 0).await;
        let invitations = onramp::invitations::InvitationService::new(
            app.store.clone(),
            &app.address,
            "onramp <onramp@localhost>",
        );
        // Anyone may ask for the link to be sent again: both links work.
        invitations
            .resend_by_email("HELD@acme.example")
            .await
            .unwrap();
        let second = link_in_mail(&app, "held@acme.example", 1).await;
        assert_ne!(first, second);
        assert_eq!(
            open(&app, &first).await,
            303,
            "{backend:?}: the held link still works"
        );
        assert_eq!(open(&app, &second).await, 303);
        // Asking again and again keeps a bounded number of links.
        for _ in 0..10 {
            invitations
                .resend_by_email("held@acme.example")
                .await
                .unwrap();
        }
        assert!(
            app.db.count("SELECT COUNT(*) FROM invitation_links").await
                <= onramp::store::invitations::MAX_EXTRA_LINKS
        );
        assert_eq!(open(&app, &first).await, 303, "{backend:?}");
        // An administrator's resend voids every earlier link.
        let inv = app
            .store
            .list_invitations(org, None, 1)
            .await
            .unwrap()
            .remove(0);
        invitations.resend(org, inv.id).await.unwrap();
        assert_eq!(open(&app, &first).await, 404, "{backend:?}");
        assert_eq!(open(&app, &second).await, 404);
    }
}
