-- Invitations and the mail outbox.

-- Per-organization invitation settings.
ALTER TABLE organizations ADD COLUMN auto_invite BOOLEAN NOT NULL DEFAULT TRUE;      -- provisioning invites by itself
ALTER TABLE organizations ADD COLUMN invitation_ttl_days INTEGER NOT NULL DEFAULT 14;
ALTER TABLE organizations ADD COLUMN inviter TEXT;                              -- who invites, as shown in the mail; NULL: "your organization's administrator"
ALTER TABLE organizations ADD COLUMN contact TEXT;                              -- whom people should contact with questions

-- One row per invitation issued to a provisioned user. The token is never
-- stored: only its SHA-256 (token_hash), replaced on resend and cleared when
-- the invitation is revoked or accepted. status: pending (issued, mail not yet
-- delivered), sent, accepted, revoked, failed (reason says why); "expired" is
-- pending/sent past expires_at.
CREATE TABLE invitations (
    id              UUID     NOT NULL PRIMARY KEY,
    org_id          UUID     NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         UUID     NOT NULL,              -- the SCIM user (kept after the user is deleted)
    email           TEXT    NOT NULL,              -- the work email invited
    email_lower     TEXT    NOT NULL,
    recipient_name  TEXT,
    token_hash      BYTEA,
    status          TEXT    NOT NULL,
    reason          TEXT,
    sends           INTEGER NOT NULL,              -- how many times a link was issued (Message-ID sequence)
    created_at      TIMESTAMPTZ     NOT NULL,
    updated_at      TIMESTAMPTZ     NOT NULL,
    expires_at      TIMESTAMPTZ     NOT NULL,
    sent_at         TIMESTAMPTZ,
    accepted_at     TIMESTAMPTZ,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
-- At most one live invitation per person: retried or racing SCIM requests
-- cannot issue a second one.
CREATE UNIQUE INDEX invitations_org_id_user_id_key ON invitations (org_id, user_id) WHERE status IN ('pending', 'sent');
CREATE INDEX invitations_user_idx ON invitations (org_id, user_id, created_at);
CREATE INDEX invitations_org_status_idx ON invitations (org_id, status, created_at);
CREATE INDEX invitations_email_idx ON invitations (email_lower);

-- The durable mail queue. A row is written in the same transaction as what
-- triggers it; a worker claims due rows with a lease, sends, and marks them.
-- The rendered content is kept only until the message is sent, fails or is
-- cancelled, then wiped (it carries the invitation link).
CREATE TABLE mail_outbox (
    id               UUID     NOT NULL PRIMARY KEY,
    org_id           UUID     NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    invitation_id    UUID,
    message_id       TEXT    NOT NULL,             -- stable per send: a re-send after a crash reuses it
    to_address       TEXT    NOT NULL,
    to_name          TEXT,
    subject          TEXT,
    body_text        TEXT,
    body_html        TEXT,
    status           TEXT    NOT NULL,             -- queued, sent, failed, cancelled
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ     NOT NULL,
    leased_until     TIMESTAMPTZ,                          -- a worker holds the row until then
    lease_owner      UUID,
    last_error       TEXT,
    created_at       TIMESTAMPTZ     NOT NULL,
    sent_at          TIMESTAMPTZ,
    CONSTRAINT mail_outbox_message_id_key UNIQUE (message_id)
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_invitation_idx ON mail_outbox (invitation_id);

-- A person who opened an invitation link: the token leaves the URL at once
-- and the browser carries this session's id in a cookie instead. Only the
-- SHA-256 of the session id is stored.
CREATE TABLE join_sessions (
    id_hash        BYTEA  NOT NULL PRIMARY KEY,
    invitation_id  UUID     NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ     NOT NULL,
    expires_at     TIMESTAMPTZ     NOT NULL
);
CREATE INDEX join_sessions_expiry_idx ON join_sessions (expires_at);
