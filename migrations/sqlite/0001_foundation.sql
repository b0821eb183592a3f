-- Organization tree, members, accounts, sessions, grants and the audit trail.
-- Flags are BIGINT 0/1 because the sqlx Any driver cannot decode SQLite booleans.

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    parent_id   BIGINT REFERENCES orgs (id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- Materialized path of ids, "/1/4/9/", for subtree queries.
    path        TEXT NOT NULL,
    sort_order  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX orgs_parent ON orgs (parent_id);
CREATE INDEX orgs_path ON orgs (path);

CREATE TABLE members (
    id          INTEGER PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    gender      TEXT NOT NULL,
    ethnicity   TEXT NOT NULL,
    birth_date  TEXT NOT NULL,
    education   TEXT NOT NULL,
    joined_on   TEXT,
    status      TEXT NOT NULL,
    phone       TEXT NOT NULL,
    id_number   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX members_org ON members (org_id);
CREATE UNIQUE INDEX members_id_number ON members (id_number);

CREATE TABLE org_roles (
    org_id      BIGINT NOT NULL REFERENCES orgs (id),
    member_id   BIGINT NOT NULL REFERENCES members (id),
    role        TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, member_id)
);
CREATE INDEX org_roles_member ON org_roles (member_id);

CREATE TABLE accounts (
    id                   INTEGER PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    member_id            BIGINT UNIQUE REFERENCES members (id),
    system_role          TEXT,
    clearance            TEXT NOT NULL DEFAULT 'internal',
    disabled             BIGINT NOT NULL DEFAULT 0,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    password_changed_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    kind         TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE login_failures (
    throttle_key TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    member_id   BIGINT NOT NULL REFERENCES members (id),
    object_type TEXT NOT NULL,
    object_id   BIGINT NOT NULL,
    access      TEXT NOT NULL,
    granted_by  BIGINT,
    created_at  BIGINT NOT NULL,
    UNIQUE (member_id, object_type, object_id, access)
);
CREATE INDEX grants_object ON grants (object_type, object_id);

CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_id     BIGINT,
    actor_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    detail       TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);

-- One row: the newest entry's sequence number and hash, signed.
CREATE TABLE audit_head (
    id         BIGINT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    signature  TEXT NOT NULL
);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
