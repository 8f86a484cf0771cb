-- Checked writes, a general mail outbox, further invitation links.

-- A write sent without waiting for its answer (a PATCH that read outside the
-- write lock and writes with a version check) is followed in its batch by
-- `INSERT INTO write_checks (ok) VALUES (changes() = n)`: the trigger aborts
-- that statement, and with it the batch, when the write changed another
-- number of rows. The view holds nothing; see src/store/sql/sqlite.rs.
CREATE VIEW write_checks (ok) AS SELECT 1;
CREATE TRIGGER write_checks_abort INSTEAD OF INSERT ON write_checks WHEN NOT NEW.ok
BEGIN
    SELECT RAISE(ABORT, 'onramp_stale: a row changed since it was read');
END;

-- The outbox carries every kind of mail, not only invitations: `kind` says
-- which feature queued a message (and decides what its delivery or failure
-- changes), `ref_id` is that feature's id for it.
ALTER TABLE mail_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'invitation';
ALTER TABLE mail_outbox RENAME COLUMN invitation_id TO ref_id;
DROP INDEX mail_outbox_invitation_idx;
CREATE INDEX mail_outbox_ref_idx ON mail_outbox (ref_id, kind);

-- Further links to one invitation, issued by the public "can't find the
-- email?" form: a person who asks again keeps the link they already have.
-- Only the SHA-256 of a link's token is stored; at most five per
-- invitation (the oldest go first); all go when an administrator resends or
-- revokes, or the invitation is accepted.
CREATE TABLE invitation_links (
    token_hash     BLOB    NOT NULL PRIMARY KEY,
    invitation_id  BLOB    NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL
);
CREATE INDEX invitation_links_invitation_idx ON invitation_links (invitation_id, created_at);

-- Join sessions are looked up per invitation (at most five are kept each).
CREATE INDEX join_sessions_invitation_idx ON join_sessions (invitation_id, created_at);
