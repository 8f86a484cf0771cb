//! The pages of a registration's steps under `/join`: the current step
//! (`GET /join/register`), and one form per step. A step done sends the
//! browser back to `/join/register` (which then shows the next); a step
//! refused shows the same page again with what to correct. Every form
//! carries a CSRF value; every step needs the invitation's join cookie and
//! the cookie of the browser that signed in for it.

use std::time::Duration;

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{
    JOIN_COOKIE, Page, PageError, REGISTRATION_COOKIE, RegistrationPages, cookie, csrf_checked,
    expired, joined, see_other, signed_in_response,
};
use super::service::{NewSession, RegistrationError, RegistrationService};
use super::steps::{Choice, Step};
use crate::http::pages::{message_leading_to, page, with_csrf, with_page_headers};
use crate::store::history::{CodePurpose, OrderRecord};

/// Every step's form: each step reads the fields it has.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StepForm {
    csrf: Option<String>,
    name: Option<String>,
    password: Option<String>,
    password_again: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    code: Option<String>,
    purpose: Option<String>,
    choice: Option<String>,
    acknowledge: Option<String>,
    business_only: Option<String>,
    shared_account: Option<String>,
    confirm: Option<String>,
}

impl StepForm {
    fn ticked(v: &Option<String>) -> bool {
        v.as_deref().is_some_and(|v| !v.is_empty())
    }

    fn text(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }

    /// The password chosen (none if left empty), typed the same twice.
    fn new_password(&self) -> Result<Option<String>, RegistrationError> {
        let typed = |v: &Option<String>| v.clone().filter(|x| !x.is_empty());
        let password = typed(&self.password);
        if password.is_some() && password != typed(&self.password_again) {
            return Err(RegistrationError::Invalid(
                "The two passwords differ.".into(),
            ));
        }
        Ok(password)
    }
}

/// The form and what the step needs to know: the join session's
/// invitation and this browser's registration cookie.
struct Posted {
    form: StepForm,
    org_id: Uuid,
    invitation: Uuid,
    browser: Option<String>,
}

impl Posted {
    /// This browser's registration cookie.
    fn browser(&self) -> Option<&str> {
        self.browser.as_deref()
    }
}

async fn posted(
    pages: &RegistrationPages,
    req: &HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Result<Posted, PageError> {
    let form = form.map(web::Form::into_inner);
    csrf_checked(req, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let (org_id, invitation) = joined(pages, req).await?;
    Ok(Posted {
        form: form.unwrap_or_default(),
        org_id,
        invitation,
        browser: req
            .cookie(REGISTRATION_COOKIE)
            .map(|c| c.value().to_string()),
    })
}

/// The current step's page, with `error` when a form was refused.
async fn step_page(
    pages: &RegistrationPages,
    req: &HttpRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let (org_id, invitation) = joined(pages, req).await?;
    let browser = req.cookie(REGISTRATION_COOKIE);
    let Some(step) = pages
        .registration
        .step(org_id, invitation, browser.as_ref().map(|c| c.value()))
        .await?
    else {
        return Ok(see_other("/join"));
    };
    let template = if step.step == Step::NewAccount {
        "register_new.html"
    } else {
        "register_step.html"
    };
    Ok(with_csrf(req, pages.secure, |csrf| {
        page(
            status,
            template,
            minijinja::context! { csrf, error, ..minijinja::Value::from_serialize(&step) },
        )
    }))
}

/// After a step: on to the next, or the same page with what to correct.
async fn after_step(
    pages: &RegistrationPages,
    req: &HttpRequest,
    done: Result<(), RegistrationError>,
) -> Page {
    match done {
        Ok(()) => Ok(see_other("/join/register")),
        Err(RegistrationError::Invalid(why)) => {
            step_page(pages, req, Some(&why), StatusCode::BAD_REQUEST).await
        }
        Err(RegistrationError::OutOfTurn) => {
            step_page(
                pages,
                req,
                Some("That step is already done or not yet due (another window, perhaps). This is where you are now."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A path finished: signed in, the join cookies spent.
fn finished(pages: &RegistrationPages, session: NewSession) -> HttpResponse {
    let mut res = signed_in_response(pages, session.secret, "/account");
    let _ = res.add_cookie(&expired(pages, JOIN_COOKIE, "/join"));
    let _ = res.add_cookie(&expired(pages, REGISTRATION_COOKIE, "/join"));
    res
}

/// After a step that may finish the path.
async fn after_final_step(
    pages: &RegistrationPages,
    req: &HttpRequest,
    done: Result<Option<NewSession>, RegistrationError>,
) -> Page {
    match done {
        Ok(Some(session)) => Ok(finished(pages, session)),
        Ok(None) => after_step(pages, req, Ok(())).await,
        Err(e) => after_step(pages, req, Err(e)).await,
    }
}

/// A step's form: checked ([`posted`]), then `act` on it; on to the next
/// step, finished (when `act` returns a session), or the same page with
/// what to correct.
async fn step(
    pages: &RegistrationPages,
    req: &HttpRequest,
    form: Option<web::Form<StepForm>>,
    act: impl AsyncFnOnce(
        &RegistrationService,
        &Posted,
    ) -> Result<Option<NewSession>, RegistrationError>,
) -> Page {
    let p = posted(pages, req, form).await?;
    let done = act(&pages.registration, &p).await;
    after_final_step(pages, req, done).await
}

pub(super) async fn register_form(pages: web::Data<RegistrationPages>, req: HttpRequest) -> Page {
    step_page(&pages, &req, None, StatusCode::OK).await
}

/// The new path's form.
pub(super) async fn register(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let password = p.form.new_password()?;
        let name = StepForm::text(&p.form.name);
        r.complete_new(p.org_id, p.invitation, p.browser(), name, password)
            .await
            .map(Some)
    })
    .await
}

pub(super) async fn start_over(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    let p = posted(&pages, &req, form).await?;
    pages
        .registration
        .start_over(p.org_id, p.invitation)
        .await?;
    let mut res = see_other("/join");
    let _ = res.add_cookie(&expired(&pages, REGISTRATION_COOKIE, "/join"));
    Ok(res)
}

pub(super) async fn prove_password(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let password = StepForm::text(&p.form.password).to_string();
        r.prove_password(p.org_id, p.invitation, p.browser(), password)
            .await
            .map(|()| None)
    })
    .await
}

fn purpose(form: &StepForm) -> Result<CodePurpose, RegistrationError> {
    match form.purpose.as_deref() {
        Some("owner") => Ok(CodePurpose::Owner),
        Some("personal_email") => Ok(CodePurpose::PersonalEmail),
        Some("work_email") => Ok(CodePurpose::WorkEmail),
        _ => Err(RegistrationError::OutOfTurn),
    }
}

pub(super) async fn send_code(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    let p = posted(&pages, &req, form).await?;
    let done = match purpose(&p.form) {
        Ok(purpose) => {
            pages
                .registration
                .send_code(p.org_id, p.invitation, p.browser.as_deref(), purpose)
                .await
        }
        Err(e) => Err(e),
    };
    match done {
        // The step's page shows the code form and where the code went.
        Ok(()) => Ok(see_other("/join/register")),
        Err(e) => after_step(&pages, &req, Err(e)).await,
    }
}

pub(super) async fn enter_code(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let (purpose, code) = (purpose(&p.form)?, StepForm::text(&p.form.code));
        r.enter_code(p.org_id, p.invitation, p.browser(), purpose, code)
            .await
    })
    .await
}

pub(super) async fn choose(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let choice = match p.form.choice.as_deref() {
            Some("migrate") => Choice::Migrate,
            Some("separate") => Choice::Separate,
            _ => {
                return Err(RegistrationError::Invalid(
                    "Choose one of the two options.".into(),
                ));
            }
        };
        let acknowledged = StepForm::ticked(&p.form.acknowledge);
        r.choose(p.org_id, p.invitation, p.browser(), choice, acknowledged)
            .await
            .map(|()| None)
    })
    .await
}

pub(super) async fn migrate(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let business_only = StepForm::ticked(&p.form.business_only);
        let shared = StepForm::ticked(&p.form.shared_account);
        r.complete_migrate(p.org_id, p.invitation, p.browser(), business_only, shared)
            .await
            .map(Some)
    })
    .await
}

pub(super) async fn personal_email(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let email = StepForm::text(&p.form.email);
        r.set_personal_email(p.org_id, p.invitation, p.browser(), email)
            .await
            .map(|()| None)
    })
    .await
}

pub(super) async fn details(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        let password = p.form.new_password()?;
        let (name, phone) = (StepForm::text(&p.form.name), StepForm::text(&p.form.phone));
        r.set_details(p.org_id, p.invitation, p.browser(), name, password, phone)
            .await
            .map(|()| None)
    })
    .await
}

/// Separate's commit again, after it failed once with everything verified.
pub(super) async fn finish_separate(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        r.complete_separate(p.org_id, p.invitation, p.browser())
            .await
            .map(Some)
    })
    .await
}

pub(super) async fn start_deregister(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    step(&pages, &req, form, async |r, p| {
        r.start_deregister(p.org_id, p.invitation, p.browser())
            .await
            .map(|()| None)
    })
    .await
}

pub(super) async fn deregister(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<StepForm>>,
) -> Page {
    let p = posted(&pages, &req, form).await?;
    let done = pages
        .registration
        .complete_deregister(
            p.org_id,
            p.invitation,
            p.browser.as_deref(),
            StepForm::ticked(&p.form.confirm),
        )
        .await;
    match done {
        Ok(personal) => {
            let mut res = message_leading_to(
                StatusCode::OK,
                "Your business account was deregistered",
                &[
                    &format!(
                        "It left its organization and is now a personal account that signs in with {personal}, with all its orders."
                    ),
                    "Your work email is free now. Continue to join with it: your invitation is still valid.",
                ],
                "/join",
                "Continue",
            );
            let _ = res.add_cookie(&expired(&pages, REGISTRATION_COOKIE, "/join"));
            Ok(res)
        }
        Err(e) => after_step(&pages, &req, Err(e)).await,
    }
}

/// Orders per page of the CSV stream.
const CSV_PAGE: i64 = 1000;

/// The order history of the account on the work email, once its owner has
/// proved it, as CSV (RFC 4180), streamed a page at a time.
pub(super) async fn orders_csv(pages: web::Data<RegistrationPages>, req: HttpRequest) -> Page {
    let (org_id, invitation) = joined(&pages, &req).await?;
    let browser = req.cookie(REGISTRATION_COOKIE);
    let account = pages
        .registration
        .history_account(org_id, invitation, browser.as_ref().map(|c| c.value()))
        .await?;
    let accounts = pages.registration.accounts();
    let header = csv_rows(&[], true).map_err(PageError::Store)?;
    let first = futures_util::stream::once(async move { Ok::<_, actix_web::Error>(header) });
    let rest = futures_util::stream::unfold(Some(None::<String>), move |after| {
        let accounts = accounts.clone();
        async move {
            let after = after?;
            match accounts.orders(account, after.as_deref(), CSV_PAGE).await {
                Ok(orders) if orders.is_empty() => None,
                Ok(orders) => {
                    let next = (orders.len() as i64 == CSV_PAGE)
                        .then(|| orders.last().map(|o| o.id.clone()))
                        .flatten();
                    let chunk = csv_rows(&orders, false)
                        .map_err(actix_web::error::ErrorInternalServerError);
                    Some((chunk, next.map(Some)))
                }
                Err(e) => {
                    crate::telemetry::log_internal(&e);
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("orders")),
                        None,
                    ))
                }
            }
        }
    });
    use futures_util::StreamExt;
    Ok(with_page_headers(HttpResponse::Ok())
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"order-history.csv\"",
        ))
        .streaming(first.chain(rest)))
}

/// Orders as CSV rows (with the header row when `header`). Cells that a
/// spreadsheet would run as a formula are prefixed with `'`.
fn csv_rows(orders: &[OrderRecord], header: bool) -> Result<Bytes, crate::store::StoreError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 + orders.len() * 96));
    let err = |e: &dyn std::fmt::Display| {
        crate::store::StoreError::other(std::io::Error::other(e.to_string()))
    };
    if header {
        w.write_record(["order", "date", "total", "currency", "purpose", "summary"])
            .map_err(|e| err(&e))?;
    }
    for o in orders {
        let cells = [
            safe_cell(&o.id),
            safe_cell(&o.date),
            safe_cell(&o.total),
            safe_cell(&o.currency),
            o.purpose.as_str().into(),
            safe_cell(&o.summary),
        ];
        w.write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(|e| err(&e))?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| err(&e))
}

/// OWASP's advice against CSV injection: a cell starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return is prefixed with `'`.
fn safe_cell(v: &str) -> std::borrow::Cow<'_, str> {
    match v.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{v}").into(),
        _ => v.into(),
    }
}

/// The cookie that binds a registration to the browser that signed in.
pub(super) fn registration_cookie(
    pages: &RegistrationPages,
    secret: String,
) -> actix_web::cookie::Cookie<'static> {
    cookie(
        pages,
        REGISTRATION_COOKIE,
        secret,
        "/join",
        Duration::from_secs(super::service::PROGRESS_TTL.whole_seconds().max(0) as u64),
        SameSite::Lax,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::Purpose;

    #[test]
    fn csv_is_rfc4180_and_formula_safe() {
        let orders = vec![
            OrderRecord {
                id: "A-1".into(),
                date: "2025-03-02".into(),
                total: "129.90".into(),
                currency: "USD".into(),
                purpose: Purpose::Personal,
                summary: "Desk lamp, \"brass\"\nsecond line".into(),
            },
            OrderRecord {
                id: "=HYPERLINK(\"http://evil\")".into(),
                date: "2025-03-03".into(),
                total: "1.00".into(),
                currency: "EUR".into(),
                purpose: Purpose::Business,
                summary: "@SUM(A1:A2)".into(),
            },
        ];
        let head = csv_rows(&[], true).unwrap();
        assert_eq!(&head[..], b"order,date,total,currency,purpose,summary\r\n");
        let body = String::from_utf8(csv_rows(&orders, false).unwrap().to_vec()).unwrap();
        assert_eq!(
            body,
            "A-1,2025-03-02,129.90,USD,personal,\"Desk lamp, \"\"brass\"\"\nsecond line\"\r\n\
             \"'=HYPERLINK(\"\"http://evil\"\")\",2025-03-03,1.00,EUR,business,'@SUM(A1:A2)\r\n"
        );
    }
}
