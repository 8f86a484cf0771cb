-- SSO connections, the platform's accounts, identities, sessions, and
-- registrations in progress.

-- Whether people of the organization may also have a password (else SSO only).
ALTER TABLE organizations ADD COLUMN passwords_allowed BOOLEAN NOT NULL DEFAULT FALSE;

-- One OpenID Connect connection per organization. The client secret is
-- sealed (ChaCha20-Poly1305) with the instance's key, bound to the org id.
CREATE TABLE sso_connections (
    org_id         UUID        NOT NULL PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    issuer         TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    client_secret  BYTEA    NOT NULL,
    scopes         TEXT    NOT NULL,          -- space-separated, e.g. "openid email profile"
    match_rule     TEXT    NOT NULL,          -- "email", or "claim:<claim>=<SCIM attribute>"
    trust_email    BOOLEAN NOT NULL,          -- accept an email claim without email_verified
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_connections_issuer_idx ON sso_connections (issuer, client_id);

-- A sign-in under way: the `state` sent to the provider (hashed), bound to
-- the browser by a cookie (hashed), single use, for minutes.
CREATE TABLE sso_login_states (
    state_hash     BYTEA    NOT NULL PRIMARY KEY,
    browser_hash   BYTEA    NOT NULL,
    org_id         UUID     NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    invitation_id  UUID,                      -- a registration; NULL for a plain sign-in
    nonce          TEXT    NOT NULL,
    pkce_verifier  TEXT    NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_login_states_expiry_idx ON sso_login_states (expires_at);

-- The platform's accounts. The login email is unique, case-insensitively.
CREATE TABLE accounts (
    id             UUID     NOT NULL PRIMARY KEY,
    email          TEXT    NOT NULL,
    email_lower    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    password_hash  TEXT,                      -- argon2 PHC string; NULL: no password
    kind           TEXT    NOT NULL,          -- personal, business
    phone          TEXT,                      -- E.164
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT accounts_email_lower_key UNIQUE (email_lower)
);

-- An account's membership of an organization (at most one), and the
-- directory user it is. Suspended while the directory has the user inactive.
CREATE TABLE memberships (
    account_id     UUID     NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    org_id         UUID     NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id        UUID,                      -- the SCIM user; NULL when joined otherwise (import)
    status         TEXT    NOT NULL,          -- active, suspended
    joined_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT memberships_account_id_key PRIMARY KEY (account_id)
);
CREATE UNIQUE INDEX memberships_org_id_user_id_key ON memberships (org_id, user_id);

-- SSO identities bound to accounts: (issuer, subject) finds the account,
-- never the email alone.
CREATE TABLE sso_identities (
    issuer         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    account_id     UUID     NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    org_id         UUID     NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT sso_identities_issuer_subject_key PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_account_idx ON sso_identities (account_id);

-- Signed-in browsers (only the SHA-256 of the cookie is stored).
CREATE TABLE sessions (
    id_hash        BYTEA    NOT NULL PRIMARY KEY,
    account_id     UUID     NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    org_id         UUID     NOT NULL,
    issuer         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    sid            TEXT,                      -- the provider's session id, for back-channel logout
    id_token       TEXT,                      -- the ID token, as the hint for RP-initiated logout
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account_idx ON sessions (account_id);
CREATE INDEX sessions_subject_idx ON sessions (issuer, subject);
CREATE INDEX sessions_sid_idx ON sessions (issuer, sid);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

-- Back-channel logout tokens seen (by the SHA-256 of iss and jti), until
-- they expire: a replayed token is refused.
CREATE TABLE logout_tokens_seen (
    jti_hash       BYTEA    NOT NULL PRIMARY KEY,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX logout_tokens_seen_expiry_idx ON logout_tokens_seen (expires_at);

-- A registration in progress, one per invitation: the verified SSO
-- identity and how far the person got (resumed from the link; "start over"
-- deletes it).
CREATE TABLE registrations (
    invitation_id  UUID        NOT NULL PRIMARY KEY REFERENCES invitations (id) ON DELETE CASCADE,
    org_id         UUID     NOT NULL,
    issuer         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    sid            TEXT,
    id_token       TEXT,
    email          TEXT    NOT NULL,          -- the invited work email
    progress       TEXT    NOT NULL,          -- JSON: the path and its steps
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX registrations_expiry_idx ON registrations (expires_at);

-- Who did what, when: registration steps, sign-ins, deprovisioning. Never a
-- password or a code.
CREATE TABLE audit_events (
    id             UUID     NOT NULL PRIMARY KEY,
    org_id         UUID,
    account_id     UUID,
    actor          TEXT    NOT NULL,          -- who: an email, "directory", "system"
    action         TEXT    NOT NULL,
    detail         JSONB   NOT NULL,
    at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_org_idx ON audit_events (org_id, at);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, at);
