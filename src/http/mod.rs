//! What every HTTP feature shares: extractors (SCIM authentication and
//! bodies), middleware, error rendering per route scope, HTML pages, limits,
//! strict query strings, health and metrics. Features mount themselves with
//! their own `configure`; `startup` wires them.

pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod paths;
pub mod query;
pub mod scim;
