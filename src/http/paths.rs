//! SCIM endpoint names as clients send them: several spell `Users` as
//! `users` or add a trailing slash (`/scim/v2/Users/`). Before routing,
//! such a path is rewritten to the endpoint's own spelling, so every route
//! and metric label sees one name.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;

const PREFIX: &str = "/scim/v2/";

/// The canonical form of a SCIM path, if it differs from `path`.
pub fn canonical(path: &str, endpoints: &[&str]) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    while segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    let mut out: Vec<String> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        // The endpoint, and `.search` after it; ids stay as sent.
        let named = (i == 0 || *seg == ".search" || seg.eq_ignore_ascii_case(".search"))
            .then(|| endpoints.iter().find(|e| e.eq_ignore_ascii_case(seg)))
            .flatten();
        out.push(named.map_or_else(|| seg.to_string(), |e| e.to_string()));
    }
    let fixed = format!("{PREFIX}{}", out.join("/"));
    (fixed != path).then_some(fixed)
}

pub async fn normalize(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(path) = canonical(req.path(), crate::scim::ENDPOINTS) {
        let with_query = match req.query_string() {
            "" => path,
            q => format!("{path}?{q}"),
        };
        if let Ok(uri) = with_query.parse::<Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::canonical;

    const E: &[&str] = &["Users", "Groups", "ServiceProviderConfig", ".search"];

    #[test]
    fn endpoint_names_are_matched_case_insensitively_and_trailing_slashes_dropped() {
        assert_eq!(
            canonical("/scim/v2/users", E).as_deref(),
            Some("/scim/v2/Users")
        );
        assert_eq!(
            canonical("/scim/v2/Users/", E).as_deref(),
            Some("/scim/v2/Users")
        );
        assert_eq!(
            canonical("/scim/v2/GROUPS/abc/", E).as_deref(),
            Some("/scim/v2/Groups/abc")
        );
        assert_eq!(
            canonical("/scim/v2/users/.SEARCH", E).as_deref(),
            Some("/scim/v2/Users/.search")
        );
        assert_eq!(
            canonical("/scim/v2/serviceproviderconfig", E).as_deref(),
            Some("/scim/v2/ServiceProviderConfig")
        );
    }

    #[test]
    fn canonical_paths_and_ids_are_left_alone() {
        assert_eq!(canonical("/scim/v2/Users", E), None);
        assert_eq!(canonical("/scim/v2/Users/AbC", E), None);
        assert_eq!(canonical("/join/x", E), None);
        assert_eq!(canonical("/scim/v2/Nope", E), None);
    }
}
