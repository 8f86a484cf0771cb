-- What an account holds on the platform — orders, payment methods (masked),
-- addresses — and what proving ownership of an account needs: one-time
-- codes and the count of failed passwords.

-- Orders stay with their account: a move of the login re-points the
-- account, never copies them. Clustered by account (WITHOUT ROWID), so an
-- account's history is one range.
CREATE TABLE orders (
    account_id     BLOB    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,          -- the platform's order id, e.g. A-1001
    date           TEXT    NOT NULL,          -- YYYY-MM-DD
    total          TEXT    NOT NULL,          -- a decimal, e.g. 129.90
    currency       TEXT    NOT NULL,          -- ISO 4217, e.g. USD
    purpose        TEXT    NOT NULL,          -- business, personal
    summary        TEXT    NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
-- "Any personal order?" without reading the others.
CREATE INDEX orders_personal_idx ON orders (account_id) WHERE purpose = 'personal';

CREATE TABLE payment_methods (
    account_id     BLOB    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    brand          TEXT    NOT NULL,
    last4          TEXT    NOT NULL,          -- the only digits kept
    expires        TEXT    NOT NULL,          -- YYYY-MM
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;

CREATE TABLE addresses (
    account_id     BLOB    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    line1          TEXT    NOT NULL,
    line2          TEXT,
    city           TEXT    NOT NULL,
    region         TEXT,
    postal_code    TEXT    NOT NULL,
    country        TEXT    NOT NULL,          -- ISO 3166-1 alpha-2
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;

-- One-time codes mailed during a registration: to prove ownership of the
-- account on the work email, or to verify an email address. Stored as an
-- HMAC under the instance key; single use; a bounded number of attempts.
CREATE TABLE one_time_codes (
    invitation_id  BLOB    NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    purpose        TEXT    NOT NULL,          -- owner, personal_email, work_email
    email          TEXT    NOT NULL,          -- where it was sent
    code_mac       BLOB    NOT NULL,
    attempts       INTEGER NOT NULL,
    sends          INTEGER NOT NULL,          -- codes sent for this purpose in the window
    window_start   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (invitation_id, purpose)
) WITHOUT ROWID;
CREATE INDEX one_time_codes_expiry_idx ON one_time_codes (expires_at);

-- Failed passwords against an account's ownership check, per window.
CREATE TABLE password_failures (
    account_id     BLOB    NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    failures       INTEGER NOT NULL,
    window_start   INTEGER NOT NULL,
    locked_until   INTEGER
);

-- A registration in progress is bound to the browser that signed in for it
-- (the SHA-256 of a cookie): the link alone does not continue it.
ALTER TABLE registrations ADD COLUMN browser_hash BLOB;
