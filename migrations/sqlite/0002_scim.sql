-- SCIM resources. Each resource keeps its whole JSON document (`resource`, minus
-- id, meta, password and derived attributes) so that attributes onramp does not
-- model, including custom extensions, round-trip unchanged. The columns beside it
-- are copies of what filters, sorting and uniqueness need, kept in the same write.

-- Users (RFC 7643 §4.1 with the enterprise extension §4.3).
CREATE TABLE scim_users (
    id               BLOB    NOT NULL PRIMARY KEY,
    org_id           BLOB    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_name        TEXT    NOT NULL,          -- as sent
    user_name_lower  TEXT    NOT NULL,          -- lower-cased: userName is unique per org, case-insensitively
    external_id      TEXT,                      -- exact (caseExact = true)
    display_name     TEXT,
    active           INTEGER NOT NULL,          -- 0/1
    resource         TEXT    NOT NULL,          -- the JSON document
    password_hash    TEXT,                      -- argon2; the password itself is never stored
    version          INTEGER NOT NULL,          -- bumped on every write; the ETag
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,          -- meta.lastModified
    CONSTRAINT scim_users_org_id_user_name_lower_key UNIQUE (org_id, user_name_lower)
);
CREATE INDEX scim_users_org_external_idx ON scim_users (org_id, external_id);
CREATE INDEX scim_users_org_updated_idx ON scim_users (org_id, updated_at, id);
CREATE INDEX scim_users_org_display_idx ON scim_users (org_id, display_name);
CREATE INDEX scim_users_org_id_idx ON scim_users (org_id, id);

-- A user's emails, one row each, so `emails.value eq …` and
-- `emails[type eq "work"]` are index lookups. Rewritten with the user.
CREATE TABLE scim_user_emails (
    user_id      BLOB    NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    org_id       BLOB    NOT NULL,
    position     INTEGER NOT NULL,              -- index in the emails array
    value        TEXT    NOT NULL,
    value_lower  TEXT    NOT NULL,
    type         TEXT,
    is_primary   INTEGER NOT NULL,              -- 0/1
    display      TEXT,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX scim_user_emails_org_value_idx ON scim_user_emails (org_id, value_lower);

-- Groups (RFC 7643 §4.2). Members live in their own table: a change costs in
-- proportion to the change, not to the group.
CREATE TABLE scim_groups (
    id                  BLOB    NOT NULL PRIMARY KEY,
    org_id              BLOB    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    display_name        TEXT    NOT NULL,
    display_name_lower  TEXT    NOT NULL,
    external_id         TEXT,
    resource            TEXT    NOT NULL,       -- the JSON document, without members
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX scim_groups_org_display_idx ON scim_groups (org_id, display_name_lower);
CREATE INDEX scim_groups_org_external_idx ON scim_groups (org_id, external_id);
CREATE INDEX scim_groups_org_updated_idx ON scim_groups (org_id, updated_at, id);
CREATE INDEX scim_groups_org_id_idx ON scim_groups (org_id, id);

-- Group membership. A member is a user or a group of the same organization;
-- deleting either removes its rows (the service does it in the same transaction).
CREATE TABLE scim_group_members (
    group_id     BLOB NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    member_id    BLOB NOT NULL,
    org_id       BLOB NOT NULL,
    member_type  TEXT NOT NULL,                 -- 'User' or 'Group'
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_group_members_member_idx ON scim_group_members (member_id);

-- The change log: every create, update, (de)activation and delete of a user, and
-- every membership change, written in the same transaction as the change.
-- Invitations react to it atomically.
CREATE TABLE scim_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         BLOB    NOT NULL,
    resource_type  TEXT    NOT NULL,            -- 'User' or 'Group'
    resource_id    BLOB    NOT NULL,
    kind           TEXT    NOT NULL,            -- created, updated, activated, deactivated, deleted, members_changed
    at             INTEGER NOT NULL
);
CREATE INDEX scim_events_org_idx ON scim_events (org_id, seq);

-- Per-organization resource counts, kept in the same transactions, so an
-- unfiltered list knows totalResults without counting rows. Each count is
-- spread over 16 shards (a writer updates a random one; readers sum them) so
-- concurrent creates do not queue on one row lock.
CREATE TABLE scim_counts (
    org_id         BLOB    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    resource_type  TEXT    NOT NULL,
    shard          INTEGER NOT NULL,
    n              INTEGER  NOT NULL,
    PRIMARY KEY (org_id, resource_type, shard)
);
