-- Tenancy: organizations, their email domains, and their SCIM bearer tokens.

-- One row per tenant (a company whose directory provisions users).
CREATE TABLE organizations (
    id          UUID        NOT NULL PRIMARY KEY,
    name        TEXT        NOT NULL,
    slug        TEXT        NOT NULL,            -- unique URL-safe short name
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);

-- The email domains an organization owns (lower case). A domain belongs to at
-- most one organization: plain SSO sign-ins find the organization by it.
CREATE TABLE organization_domains (
    org_id  UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain  TEXT NOT NULL,
    PRIMARY KEY (org_id, domain),
    CONSTRAINT organization_domains_domain_key UNIQUE (domain)
);

-- SCIM bearer tokens. Only the SHA-256 of the token is kept; the token is
-- shown once, when created. Authentication looks the hash up by index.
CREATE TABLE scim_tokens (
    id            UUID        NOT NULL PRIMARY KEY,
    org_id        UUID        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    label         TEXT        NOT NULL DEFAULT '',
    token_hash    BYTEA       NOT NULL,
    prefix        TEXT        NOT NULL,          -- first characters, for people to recognise it
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,                   -- updated at most once a minute
    revoked_at    TIMESTAMPTZ,                   -- set once; a revoked token never authenticates
    CONSTRAINT scim_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX scim_tokens_org_idx ON scim_tokens (org_id);
