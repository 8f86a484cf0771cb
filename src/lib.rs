//! onramp: brings a company's employees from its corporate directory (SCIM
//! 2.0) into a business-buying platform — an invitation by mail for every
//! provisioned person, registration by corporate SSO.
//!
//! The crate is the server's library; `main.rs` is only the CLI around it.

pub mod cli;
pub mod config;
pub mod http;
pub mod invitations;
pub mod join;
pub mod mail;
pub mod scim;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenancy;

#[cfg(test)]
mod jwt_backend_tests {
    //! jsonwebtoken compiles with no crypto backend and then panics at run
    //! time; this proves exactly one (`rust_crypto`) is wired in.

    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        aud: String,
        exp: u64,
    }

    #[test]
    fn a_signed_jwt_round_trips_with_the_rust_crypto_backend() {
        let claims = Claims {
            sub: "user-1".into(),
            aud: "onramp".into(),
            exp: 4_102_444_800,
        };
        let key = b"a test secret of reasonable length!!";
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key),
        )
        .expect("signs");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&["onramp"]);
        let decoded = decode::<Claims>(&token, &DecodingKey::from_secret(key), &validation)
            .expect("verifies");
        assert_eq!(decoded.claims, claims);
        let wrong = decode::<Claims>(
            &token,
            &DecodingKey::from_secret(b"another secret"),
            &validation,
        );
        assert!(wrong.is_err());
    }
}
