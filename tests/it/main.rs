//! The integration suite: the real app on port 0 over HTTP, the store
//! contract, and the CLI binary. Every test runs on SQLite; with
//! `POSTGRES_TEST_URL=postgres://…` set, the backend-sensitive ones run on
//! PostgreSQL too (each in a fresh database, dropped afterwards), and an
//! unreachable server is a failure.

mod auth;
mod cli;
mod concurrency;
mod entra_fixtures;
mod filter_sql;
mod health;
mod helpers;
mod hostile_input;
mod idp;
mod idp_selftest;
mod invitations;
mod join_pages;
mod mail;
mod okta_spec;
mod outbox;
mod paths;
mod scim_bulk;
mod scim_crud;
mod scim_query;
mod shutdown;
mod smtp_sink;
mod sso;
mod store_contract;
mod structure;
