-- Checked writes, a general mail outbox, further invitation links.

-- Writes sent together as one statement (see src/store/sql/pg.rs) end in
-- `SELECT onramp_expect(<each checked write changed the rows it must>)`: a
-- failed check aborts the statement, and with it every write in it.
CREATE FUNCTION onramp_expect(ok BOOLEAN) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'onramp_stale: a row changed since it was read';
    END IF;
    RETURN TRUE;
END;
$$;

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
    token_hash     BYTEA       NOT NULL PRIMARY KEY,
    invitation_id  UUID        NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX invitation_links_invitation_idx ON invitation_links (invitation_id, created_at);

-- Join sessions are looked up per invitation (at most five are kept each).
CREATE INDEX join_sessions_invitation_idx ON join_sessions (invitation_id, created_at);

-- A queued message's rendered bodies (a few KiB) stay in its row, neither
-- compressed nor moved to the TOAST table: they are written once, read
-- once and wiped when sent, and compressing them cost more than keeping them.
ALTER TABLE mail_outbox SET (toast_tuple_target = 8160);
