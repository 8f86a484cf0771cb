//! The paths for a work email that already has an account, over HTTP on
//! every backend, against the in-process provider: migrate (by password
//! and by mailed code), separate, business-only with personal orders, and
//! blocked (order history, deregistration, then the new path). Each
//! compares what the accounts hold before and after — nothing lost,
//! nothing copied — and injected failures leave everything as it was.

use onramp::accounts::import::Importer;
use onramp::accounts::{AccountView, show};
use onramp::secrets::password::Passwords;
use onramp::store::DynStore;
use onramp::store::accounts::AccountKind;
use onramp::store::invitations::InvitationStatus;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestDb, backends};
use crate::idp::Identity;
use crate::sso::{Answer, Browser, Fixture};

const PASSWORD: &str = "old-account-password";

/// Imports accounts given as JSON values (one per line).
async fn import(store: &DynStore, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let report = Importer::new(store.clone(), Passwords::new(2))
        .run(std::io::Cursor::new(text), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
}

fn order(id: &str, purpose: &str) -> Value {
    json!({"id": id, "date": "2025-03-02", "total": "19.90", "currency": "USD", "purpose": purpose, "summary": format!("order {id}")})
}

/// A personal account on `email` with `business` and `personal` orders,
/// two payment methods and an address.
fn personal_account(email: &str, business: usize, personal: usize, password: bool) -> Value {
    let mut orders: Vec<Value> = (0..business)
        .map(|i| order(&format!("B-{i:03}"), "business"))
        .collect();
    orders.extend((0..personal).map(|i| order(&format!("P-{i:03}"), "personal")));
    let mut v = json!({
        "email": email, "name": "Old Shopper", "kind": "personal", "phone": "+15551230000",
        "orders": orders,
        "payment_methods": [{"brand": "visa", "last4": "4242", "expires": "2028-04"},
                            {"brand": "amex", "last4": "0005", "expires": "2027-11"}],
        "addresses": [{"name": "Old Shopper", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}]
    });
    if password {
        v["password"] = PASSWORD.into();
    }
    v
}

/// What an account holds, for before/after comparisons (its login aside).
fn holdings(v: &AccountView) -> Value {
    json!({"orders": v.orders, "payment_methods": v.payment_methods, "addresses": v.addresses})
}

async fn account(fx: &Fixture, email: &str) -> AccountView {
    show(fx.store(), email)
        .await
        .unwrap()
        .expect("the account exists")
}

/// Signs `email` in for its invitation (as `sub`) and lands on the step page.
async fn arrive<'a>(fx: &'a Fixture, email: &str, sub: &str) -> (Browser<'a>, Uuid, String) {
    fx.idp
        .add_identity(Some(email), Identity::verified(sub, email, "Pat Doe"));
    let (_, inv, link) = fx.invite(email).await;
    let mut b = Browser::new(&fx.app);
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(
        back.location.as_deref(),
        Some("/join/register"),
        "{}",
        back.body
    );
    (b, inv, link)
}

/// The newest code mailed for the invitation to `to`.
async fn mailed_code(fx: &Fixture, inv: Uuid, to: &str) -> String {
    let mail = fx.store().mail_for("code", inv).await.unwrap();
    let m = mail
        .iter()
        .rev()
        .find(|m| m.to_address.eq_ignore_ascii_case(to))
        .unwrap_or_else(|| panic!("no code mailed to {to}: {mail:?}"));
    let text = m.body_text.as_deref().unwrap();
    let code: String = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
        .expect("a six-digit code in the mail")
        .to_string();
    assert!(
        !m.subject.as_deref().unwrap_or("").contains(&code),
        "not in the subject"
    );
    code
}

fn page_says(a: &Answer, what: &str) {
    let text = a
        .body
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    assert!(
        text.contains(what),
        "expected {what:?} in ({}) {}",
        a.status,
        a.body
    );
}

async fn step(b: &mut Browser<'_>) -> Answer {
    let a = b.get("/join/register").await;
    assert_eq!(a.status, 200, "{}", a.body);
    a
}

#[tokio::test]
async fn migrate_by_password_keeps_the_account_and_everything_it_holds() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let email = "morgan@acme.example";
        import(fx.store(), &[personal_account(email, 3, 0, true)]).await;
        let before = account(&fx, email).await;
        let (mut b, inv, _) = arrive(&fx, email, "sub-morgan").await;
        let page = step(&mut b).await;
        page_says(&page, "Your work email already has an account");
        page_says(&page, "The account's password");

        // Nothing past the proof is possible yet.
        let early = b
            .submit(
                "/join/migrate",
                &[("business_only", "yes"), ("shared_account", "yes")],
            )
            .await;
        assert_eq!(early.status, 409, "{backend:?}: {}", early.body);

        let wrong = b
            .submit("/join/prove-password", &[("password", "not it")])
            .await;
        assert_eq!(wrong.status, 400);
        page_says(&wrong, "That password is not right. 4 more tries");
        let right = b
            .submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        assert_eq!(
            right.location.as_deref(),
            Some("/join/register"),
            "{}",
            right.body
        );

        let choose = step(&mut b).await;
        page_says(&choose, "3 orders");
        page_says(&choose, "Business only (recommended)");
        assert_eq!(
            b.submit("/join/choose", &[("choice", "migrate")])
                .await
                .status,
            303
        );
        let confirm = step(&mut b).await;
        page_says(
            &confirm,
            "administrators will see all 3 orders and 2 payment methods",
        );
        let unticked = b.submit("/join/migrate", &[("business_only", "yes")]).await;
        assert_eq!(unticked.status, 400);
        page_says(&unticked, "Tick both boxes");
        let done = b
            .submit(
                "/join/migrate",
                &[("business_only", "yes"), ("shared_account", "yes")],
            )
            .await;
        assert_eq!(
            done.location.as_deref(),
            Some("/account"),
            "{backend:?}: {}",
            done.body
        );
        page_says(&b.get("/account").await, "Acme Corp");

        let after = account(&fx, email).await;
        assert_eq!(after.id, before.id, "the same account");
        assert_eq!(after.kind, AccountKind::Business);
        assert_eq!(after.organization, Some(fx.org));
        assert_eq!(
            holdings(&after),
            holdings(&before),
            "nothing lost, nothing copied"
        );
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 1);
        let (bound, _) = fx
            .store()
            .identity_account(&fx.idp.issuer(), "sub-morgan")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bound, before.id);
        let i = fx
            .store()
            .invitation_by_id(fx.org, inv)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.status, InvitationStatus::Accepted);
        let notices = fx.store().mail_for("notice", inv).await.unwrap();
        assert_eq!(notices.len(), 1);
        assert!(
            notices[0]
                .body_text
                .as_deref()
                .unwrap()
                .contains("kept all its 3 orders")
        );
        let audit: Vec<String> = fx
            .store()
            .audit_events(fx.org, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                let d = e.detail.to_string();
                assert!(!d.contains(PASSWORD), "no password in the audit log");
                format!(
                    "{} {}",
                    e.action,
                    e.detail.get("path").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect();
        for expected in [
            "registration.ownership_proved ",
            "registration.chose ",
            "registration.completed migrate",
        ] {
            assert!(audit.iter().any(|a| a == expected), "{expected}: {audit:?}");
        }
    }
}

#[tokio::test]
async fn migrate_by_mailed_code_is_single_use_and_limited_in_tries() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "nopw@acme.example";
    import(fx.store(), &[personal_account(email, 1, 0, false)]).await;
    let (mut b, inv, _) = arrive(&fx, email, "sub-nopw").await;
    let page = step(&mut b).await;
    assert!(
        !page.body.contains("type=\"password\""),
        "no password to ask for"
    );
    let wrong_turn = b
        .submit("/join/code", &[("purpose", "owner"), ("code", "123456")])
        .await;
    assert_eq!(wrong_turn.status, 400, "no code sent yet");
    assert_eq!(
        b.submit("/join/send-code", &[("purpose", "owner")])
            .await
            .status,
        303
    );
    page_says(&step(&mut b).await, "We sent a code to nopw@acme.example");
    let code = mailed_code(&fx, inv, email).await;
    let stored: i64 = fx.app.db.count("SELECT COUNT(*) FROM one_time_codes").await;
    assert_eq!(stored, 1);
    // Four wrong tries, then the fifth (right) one still works.
    let other = if code == "000000" { "111111" } else { "000000" };
    for left in [4, 3, 2, 1] {
        let w = b
            .submit("/join/code", &[("purpose", "owner"), ("code", other)])
            .await;
        assert_eq!(w.status, 400);
        page_says(&w, &format!("{left} more tries"));
    }
    let formatted = format!("{} {}", &code[..3], &code[3..]);
    let ok = b
        .submit("/join/code", &[("purpose", "owner"), ("code", &formatted)])
        .await;
    assert_eq!(
        ok.location.as_deref(),
        Some("/join/register"),
        "{}",
        ok.body
    );
    page_says(&step(&mut b).await, "How should your account join");
    assert_eq!(
        fx.app.db.count("SELECT COUNT(*) FROM one_time_codes").await,
        0,
        "single use"
    );

    // A second invitation: five wrong tries spend the code.
    let email2 = "nopw2@acme.example";
    import(fx.store(), &[personal_account(email2, 1, 0, false)]).await;
    let (mut b2, inv2, _) = arrive(&fx, email2, "sub-nopw2").await;
    b2.submit("/join/send-code", &[("purpose", "owner")]).await;
    let code2 = mailed_code(&fx, inv2, email2).await;
    let other = if code2 == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        b2.submit("/join/code", &[("purpose", "owner"), ("code", other)])
            .await;
    }
    let spent = b2
        .submit("/join/code", &[("purpose", "owner"), ("code", &code2)])
        .await;
    assert_eq!(spent.status, 400);
    page_says(&spent, "Too many wrong codes");
    // Codes are stored as MACs, never as they are.
    let macs = fx
        .app
        .db
        .count(&format!(
            "SELECT COUNT(*) FROM one_time_codes WHERE code_mac = X'{}'",
            hex(code2.as_bytes())
        ))
        .await;
    assert_eq!(macs, 0);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn wrong_passwords_pause_the_password_but_never_the_mailed_code() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "locked@acme.example";
    import(fx.store(), &[personal_account(email, 1, 0, true)]).await;
    let (mut b, inv, _) = arrive(&fx, email, "sub-locked").await;
    for _ in 0..4 {
        b.submit("/join/prove-password", &[("password", "guess")])
            .await;
    }
    let fifth = b
        .submit("/join/prove-password", &[("password", "guess")])
        .await;
    page_says(&fifth, "Too many wrong passwords");
    let even_right = b
        .submit("/join/prove-password", &[("password", PASSWORD)])
        .await;
    assert_eq!(even_right.status, 400);
    page_says(&even_right, "Try again after");
    b.submit("/join/send-code", &[("purpose", "owner")]).await;
    let code = mailed_code(&fx, inv, email).await;
    let ok = b
        .submit("/join/code", &[("purpose", "owner"), ("code", &code)])
        .await;
    assert_eq!(ok.status, 303, "the owner is never locked out: {}", ok.body);
}

#[tokio::test]
async fn business_only_for_an_account_with_personal_orders_needs_the_acknowledgement() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "mixed@acme.example";
    import(fx.store(), &[personal_account(email, 2, 1, true)]).await;
    let (mut b, _, _) = arrive(&fx, email, "sub-mixed").await;
    b.submit("/join/prove-password", &[("password", PASSWORD)])
        .await;
    let choose = step(&mut b).await;
    page_says(&choose, "Separate (recommended)");
    page_says(&choose, "1 of them for personal use");
    let refused = b.submit("/join/choose", &[("choice", "migrate")]).await;
    assert_eq!(refused.status, 400);
    page_says(&refused, "orders for personal use");
    let ok = b
        .submit(
            "/join/choose",
            &[("choice", "migrate"), ("acknowledge", "yes")],
        )
        .await;
    assert_eq!(ok.status, 303);
    page_says(&step(&mut b).await, "Move your account into Acme Corp");
    // And back to separate, from the confirmation.
    assert_eq!(
        b.submit("/join/choose", &[("choice", "separate")])
            .await
            .status,
        303
    );
    page_says(&step(&mut b).await, "Your personal email");
}

#[tokio::test]
async fn separate_moves_the_old_login_and_creates_the_business_account_in_one_transaction() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let email = "sam@acme.example";
        import(
            fx.store(),
            &[
                personal_account(email, 2, 3, true),
                personal_account("taken@home.example", 0, 0, false),
            ],
        )
        .await;
        let before = account(&fx, email).await;
        let (mut b, inv, _) = arrive(&fx, email, "sub-sam").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        assert_eq!(
            b.submit("/join/choose", &[("choice", "separate")])
                .await
                .status,
            303
        );
        for (bad, why) in [
            ("Sam@ACME.example", "not your work email"),
            ("sam@acme.example ", "not your work email"),
            ("other@acme.example", "organization's domain"),
            ("TAKEN@home.example", "already uses this email"),
            ("nope", "email address like"),
        ] {
            let r = b.submit("/join/personal-email", &[("email", bad)]).await;
            assert_eq!(r.status, 400, "{bad}");
            page_says(&r, why);
        }
        let personal = "sam.home@home.example";
        assert_eq!(
            b.submit("/join/personal-email", &[("email", personal)])
                .await
                .status,
            303
        );
        page_says(&step(&mut b).await, "Check your personal email");
        let code = mailed_code(&fx, inv, personal).await;
        assert_eq!(
            b.submit(
                "/join/code",
                &[("purpose", "personal_email"), ("code", &code)]
            )
            .await
            .status,
            303
        );
        let details = step(&mut b).await;
        page_says(&details, "Your new business account");
        let bad_phone = b
            .submit("/join/details", &[("name", "Sam Work"), ("phone", "12345")])
            .await;
        assert_eq!(bad_phone.status, 400);
        page_says(&bad_phone, "international form");
        let ok = b
            .submit(
                "/join/details",
                &[("name", "Sam Work"), ("phone", "+44 20 7946 0000")],
            )
            .await;
        assert_eq!(ok.status, 303);
        page_says(&step(&mut b).await, "Check your work email");
        // Nothing has moved yet.
        assert_eq!(account(&fx, email).await.id, before.id);
        let code = mailed_code(&fx, inv, email).await;
        let done = b
            .submit("/join/code", &[("purpose", "work_email"), ("code", &code)])
            .await;
        assert_eq!(
            done.location.as_deref(),
            Some("/account"),
            "{backend:?}: {}",
            done.body
        );

        let moved = account(&fx, personal).await;
        assert_eq!(moved.id, before.id, "the old account, re-pointed");
        assert_eq!(moved.kind, AccountKind::Personal);
        assert_eq!(moved.organization, None);
        assert_eq!(
            holdings(&moved),
            holdings(&before),
            "everything moved with it"
        );
        let new = account(&fx, email).await;
        assert_ne!(new.id, before.id);
        assert_eq!(new.kind, AccountKind::Business);
        assert_eq!(new.name, "Sam Work");
        assert_eq!(new.phone.as_deref(), Some("+442079460000"));
        assert_eq!(new.organization, Some(fx.org));
        assert!(new.orders.is_empty() && new.payment_methods.is_empty());
        let (bound, _) = fx
            .store()
            .identity_account(&fx.idp.issuer(), "sub-sam")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bound, new.id);
        let notices = fx.store().mail_for("notice", inv).await.unwrap();
        let mut to: Vec<&str> = notices.iter().map(|m| m.to_address.as_str()).collect();
        to.sort();
        assert_eq!(to, [personal, email], "both addresses are told");
        assert!(
            notices
                .iter()
                .all(|m| m.body_text.as_deref().unwrap().contains(personal))
        );
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 3);
        assert_eq!(
            fx.app.db.count("SELECT COUNT(*) FROM orders").await,
            5,
            "no order copied"
        );
    }
}

/// Sends the same last step from two tabs of one browser at once and
/// checks that exactly one finished it and the other got a clear page.
async fn race_last_step<'a>(
    b: &mut Browser<'a>,
    fx: &'a Fixture,
    target: &str,
    fields: &[(&str, &str)],
) {
    let mut tab = Browser::new(&fx.app);
    tab.jar = b.jar.clone();
    let (one, two) = tokio::join!(b.submit(target, fields), tab.submit(target, fields));
    let won_first = one.location.as_deref() == Some("/account");
    let (won, lost, loser) = if won_first {
        (&one, two.clone(), &mut tab)
    } else {
        (&two, one.clone(), b)
    };
    assert_eq!(won.location.as_deref(), Some("/account"), "{one:?} {two:?}");
    // The other tab gets a page saying so, at once or after going back to
    // the invitation's page; never a second result.
    let page = match lost.location.as_deref() {
        Some("/join") => loser.get("/join").await,
        None => lost,
        Some(_) => panic!("a second result: {one:?} {two:?}"),
    };
    assert!(
        (400..500).contains(&page.status) || page.status == 200,
        "{page:?}"
    );
    assert!(
        [
            "accepted meanwhile",
            "already done",
            "already been used",
            "already accepted",
            "no longer valid",
            "Sign in with your organization first",
        ]
        .iter()
        .any(|w| page.body.replace("&#x27;", "'").contains(w)),
        "a clear page: {}",
        page.body
    );
}

#[tokio::test]
async fn two_tabs_finishing_a_path_at_once_make_one_result() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        // Migrate: both tabs confirm.
        let email = "race-m@acme.example";
        import(fx.store(), &[personal_account(email, 4, 0, true)]).await;
        let before = account(&fx, email).await;
        let (mut b, inv, _) = arrive(&fx, email, "sub-race-m").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        b.submit("/join/choose", &[("choice", "migrate")]).await;
        race_last_step(
            &mut b,
            &fx,
            "/join/migrate",
            &[("business_only", "yes"), ("shared_account", "yes")],
        )
        .await;
        let after = account(&fx, email).await;
        assert_eq!((after.id, after.organization), (before.id, Some(fx.org)));
        assert_eq!(holdings(&after), holdings(&before), "{backend:?}");
        assert_eq!(fx.store().mail_for("notice", inv).await.unwrap().len(), 1);

        // Separate: both tabs send the work email's code.
        let email = "race-s@acme.example";
        import(fx.store(), &[personal_account(email, 1, 2, true)]).await;
        let before = account(&fx, email).await;
        let (mut b, inv, _) = arrive(&fx, email, "sub-race-s").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        b.submit("/join/choose", &[("choice", "separate")]).await;
        let personal = "race-s@home.example";
        b.submit("/join/personal-email", &[("email", personal)])
            .await;
        let code = mailed_code(&fx, inv, personal).await;
        b.submit(
            "/join/code",
            &[("purpose", "personal_email"), ("code", &code)],
        )
        .await;
        let ok = b.submit("/join/details", &[("name", "Race Work")]).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        let code = mailed_code(&fx, inv, email).await;
        race_last_step(
            &mut b,
            &fx,
            "/join/code",
            &[("purpose", "work_email"), ("code", &code)],
        )
        .await;
        let moved = account(&fx, personal).await;
        assert_eq!(moved.id, before.id);
        assert_eq!(holdings(&moved), holdings(&before), "{backend:?}");
        assert_eq!(account(&fx, email).await.organization, Some(fx.org));
        assert_eq!(fx.store().mail_for("notice", inv).await.unwrap().len(), 2);

        // Two accounts from migrate's one and separate's two; one identity
        // and one membership per invitation; orders never copied.
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 3);
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM memberships").await, 2);
        assert_eq!(
            fx.app.db.count("SELECT COUNT(*) FROM sso_identities").await,
            2
        );
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM orders").await, 7);
    }
}

#[tokio::test]
async fn progress_resumes_after_signing_in_again_and_start_over_leaves_nothing() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "resume@acme.example";
    import(fx.store(), &[personal_account(email, 1, 1, true)]).await;
    let (mut b, inv, link) = arrive(&fx, email, "sub-resume").await;
    b.submit("/join/prove-password", &[("password", PASSWORD)])
        .await;
    b.submit("/join/choose", &[("choice", "separate")]).await;
    // Another browser, the same person: resumes where they were.
    let mut again = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut again, &link).await.status, 303);
    page_says(&step(&mut again).await, "Your personal email");
    // Start over: nothing of it is left, and the invitation stays.
    assert_eq!(
        again
            .submit("/join/start-over", &[])
            .await
            .location
            .as_deref(),
        Some("/join")
    );
    assert!(fx.store().registration(inv).await.unwrap().is_none());
    assert_eq!(
        fx.app.db.count("SELECT COUNT(*) FROM one_time_codes").await,
        0
    );
    assert!(
        fx.store()
            .invitation_by_id(fx.org, inv)
            .await
            .unwrap()
            .unwrap()
            .status
            .is_live()
    );
    let mut third = Browser::new(&fx.app);
    fx.sign_in_for(&mut third, &link).await;
    page_says(&step(&mut third).await, "first prove that it is yours");
}

#[tokio::test]
async fn blocked_reveals_nothing_before_proof_then_exports_and_deregisters_and_the_new_path_follows()
 {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let other = fx
            .app
            .tenancy
            .create_org(onramp::tenancy::NewOrg {
                name: "Globex Secret Division".into(),
                domains: vec![],
            })
            .await
            .unwrap();
        let email = "blair@acme.example";
        let mut line = personal_account(email, 3, 0, true);
        line["kind"] = "business".into();
        line["organization"] = other.id.to_string().into();
        line["orders"][0]["summary"] = "=HYPERLINK(\"http://evil.example\")".into();
        import(fx.store(), &[line]).await;
        let before = account(&fx, email).await;
        assert_eq!(before.organization, Some(other.id));
        let (mut b, inv, link) = arrive(&fx, email, "sub-blair").await;
        let page = step(&mut b).await;
        page_says(&page, "cannot join Acme Corp yet");
        assert!(
            !page.body.contains("Globex"),
            "no organization named before proof"
        );
        let csv = b.get("/join/orders.csv").await;
        assert_ne!(csv.status, 200, "no history before proof");
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        let options = step(&mut b).await;
        page_says(&options, "Globex Secret Division");
        let csv = b.get("/join/orders.csv").await;
        assert_eq!(csv.status, 200);
        let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "order,date,total,currency,purpose,summary");
        assert_eq!(lines.len(), 4, "{}", csv.body);
        assert!(
            csv.body.contains("\"'=HYPERLINK("),
            "formula-safe: {}",
            csv.body
        );

        assert_eq!(b.submit("/join/deregister/start", &[]).await.status, 303);
        page_says(&step(&mut b).await, "Where should the account go?");
        let personal = "blair@home.example";
        b.submit("/join/personal-email", &[("email", personal)])
            .await;
        let code = mailed_code(&fx, inv, personal).await;
        b.submit(
            "/join/code",
            &[("purpose", "personal_email"), ("code", &code)],
        )
        .await;
        page_says(&step(&mut b).await, "Deregister the business account");
        let unconfirmed = b.submit("/join/deregister", &[]).await;
        assert_eq!(unconfirmed.status, 400);
        let done = b.submit("/join/deregister", &[("confirm", "yes")]).await;
        assert_eq!(done.status, 200, "{backend:?}: {}", done.body);
        page_says(&done, "deregistered");

        let after = account(&fx, personal).await;
        assert_eq!(after.id, before.id);
        assert_eq!(after.kind, AccountKind::Personal);
        assert_eq!(after.organization, None, "left its organization");
        assert_eq!(holdings(&after), holdings(&before));
        assert!(
            show(fx.store(), email).await.unwrap().is_none(),
            "the work email is free"
        );
        assert!(
            fx.store()
                .invitation_by_id(fx.org, inv)
                .await
                .unwrap()
                .unwrap()
                .status
                .is_live()
        );

        // The admin resends; the person is on the new path.
        fx.app
            .services
            .invitations
            .resend(fx.org, inv)
            .await
            .unwrap();
        let _ = link;
        let mail = fx.store().mail_for("invitation", inv).await.unwrap();
        let body = mail.last().unwrap().body_text.clone().unwrap();
        let token = body
            .split_whitespace()
            .find_map(|w| w.split("/join/").nth(1))
            .expect("a link in the mail")
            .to_string();
        let mut fresh = Browser::new(&fx.app);
        assert_eq!(fx.sign_in_for(&mut fresh, &token).await.status, 303);
        page_says(&step(&mut fresh).await, "Create your business account");
        let done = fresh
            .submit("/join/register", &[("name", "Blair New")])
            .await;
        assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
        let new = account(&fx, email).await;
        assert_eq!(new.organization, Some(fx.org));
        assert_ne!(new.id, before.id);
    }
}

#[tokio::test]
async fn a_standalone_business_account_is_blocked_too() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "solo@acme.example";
    let mut line = personal_account(email, 1, 0, true);
    line["kind"] = "business".into();
    import(fx.store(), &[line]).await;
    let (mut b, _, _) = arrive(&fx, email, "sub-solo").await;
    page_says(&step(&mut b).await, "cannot join Acme Corp yet");
    b.submit("/join/prove-password", &[("password", PASSWORD)])
        .await;
    page_says(&step(&mut b).await, "belongs to no organization");
}

/// A trigger that fails the last write of a path's transaction.
async fn fail_on_audit(db: &TestDb, action: &str) {
    db.execute(
        &format!(
            "CREATE TRIGGER inject_fault BEFORE INSERT ON audit_events WHEN NEW.action = '{action}' \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
        ),
        &format!(
            "CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.action = '{action}' THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER inject_fault BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION inject_fault();"
        ),
    )
    .await;
}

async fn heal(db: &TestDb) {
    db.execute(
        "DROP TRIGGER inject_fault;",
        "DROP TRIGGER inject_fault ON audit_events; DROP FUNCTION inject_fault();",
    )
    .await;
}

/// Everything a path may touch, for before/after comparisons.
async fn snapshot(fx: &Fixture, emails: &[&str]) -> Value {
    let mut accounts = Vec::new();
    for e in emails {
        accounts.push(match show(fx.store(), e).await.unwrap() {
            Some(v) => {
                json!({"id": v.id, "kind": v.kind, "org": v.organization, "holds": holdings(&v)})
            }
            None => Value::Null,
        });
    }
    let mut counts = Vec::new();
    for table in [
        "accounts",
        "memberships",
        "sso_identities",
        "orders",
        "payment_methods",
        "addresses",
        "sessions",
    ] {
        counts.push(
            fx.app
                .db
                .count(&format!("SELECT COUNT(*) FROM {table}"))
                .await,
        );
    }
    json!({"accounts": accounts, "counts": counts})
}

#[tokio::test]
async fn a_failure_in_the_middle_of_any_path_commit_leaves_everything_as_it_was() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        // Migrate.
        let m = "fail-migrate@acme.example";
        import(fx.store(), &[personal_account(m, 2, 0, true)]).await;
        let (mut b, inv, _) = arrive(&fx, m, "sub-fm").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        b.submit("/join/choose", &[("choice", "migrate")]).await;
        let before = snapshot(&fx, &[m]).await;
        fail_on_audit(&fx.app.db, "registration.completed").await;
        let failed = b
            .submit(
                "/join/migrate",
                &[("business_only", "yes"), ("shared_account", "yes")],
            )
            .await;
        assert_eq!(failed.status, 500, "{backend:?}: {}", failed.body);
        assert!(!failed.body.contains("injected"), "no raw database message");
        assert_eq!(
            snapshot(&fx, &[m]).await,
            before,
            "{backend:?}: migrate left nothing"
        );
        assert!(
            fx.store()
                .invitation_by_id(fx.org, inv)
                .await
                .unwrap()
                .unwrap()
                .status
                .is_live()
        );
        assert!(fx.store().mail_for("notice", inv).await.unwrap().is_empty());
        heal(&fx.app.db).await;
        let ok = b
            .submit(
                "/join/migrate",
                &[("business_only", "yes"), ("shared_account", "yes")],
            )
            .await;
        assert_eq!(
            ok.location.as_deref(),
            Some("/account"),
            "{backend:?}: the retry works"
        );

        // Separate.
        let s = "fail-separate@acme.example";
        let p = "fail-separate@home.example";
        import(fx.store(), &[personal_account(s, 1, 2, true)]).await;
        let (mut b, inv, _) = arrive(&fx, s, "sub-fs").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        b.submit("/join/choose", &[("choice", "separate")]).await;
        b.submit("/join/personal-email", &[("email", p)]).await;
        let code = mailed_code(&fx, inv, p).await;
        b.submit(
            "/join/code",
            &[("purpose", "personal_email"), ("code", &code)],
        )
        .await;
        b.submit("/join/details", &[("name", "Fail Separate")])
            .await;
        let before = snapshot(&fx, &[s, p]).await;
        fail_on_audit(&fx.app.db, "registration.completed").await;
        let code = mailed_code(&fx, inv, s).await;
        let failed = b
            .submit("/join/code", &[("purpose", "work_email"), ("code", &code)])
            .await;
        assert_eq!(failed.status, 500, "{backend:?}: {}", failed.body);
        assert_eq!(
            snapshot(&fx, &[s, p]).await,
            before,
            "{backend:?}: separate left nothing"
        );
        heal(&fx.app.db).await;
        let page = step(&mut b).await;
        page_says(&page, "Your work email is confirmed.");
        let ok = b.submit("/join/finish", &[]).await;
        assert_eq!(
            ok.location.as_deref(),
            Some("/account"),
            "{backend:?}: {}",
            ok.body
        );
        assert_eq!(show(fx.store(), p).await.unwrap().unwrap().orders.len(), 3);

        // Deregister.
        let d = "fail-blocked@acme.example";
        let dp = "fail-blocked@home.example";
        let mut line = personal_account(d, 2, 0, true);
        line["kind"] = "business".into();
        import(fx.store(), &[line]).await;
        let (mut b, inv, _) = arrive(&fx, d, "sub-fd").await;
        b.submit("/join/prove-password", &[("password", PASSWORD)])
            .await;
        b.submit("/join/deregister/start", &[]).await;
        b.submit("/join/personal-email", &[("email", dp)]).await;
        let code = mailed_code(&fx, inv, dp).await;
        b.submit(
            "/join/code",
            &[("purpose", "personal_email"), ("code", &code)],
        )
        .await;
        let before = snapshot(&fx, &[d, dp]).await;
        fail_on_audit(&fx.app.db, "account.deregistered").await;
        let failed = b.submit("/join/deregister", &[("confirm", "yes")]).await;
        assert_eq!(failed.status, 500, "{backend:?}: {}", failed.body);
        assert_eq!(
            snapshot(&fx, &[d, dp]).await,
            before,
            "{backend:?}: deregistration left nothing"
        );
        heal(&fx.app.db).await;
        assert_eq!(
            b.submit("/join/deregister", &[("confirm", "yes")])
                .await
                .status,
            200
        );
    }
}
