-- Real-time hub event log, notices with receipts, stored files.

-- Per-topic sequence counter. Appending an event updates this row first, so
-- concurrent appends to one topic (also from other nodes) commit in order.
CREATE TABLE hub_topics (
    topic     TEXT PRIMARY KEY,
    last_seq  BIGINT NOT NULL
);

CREATE TABLE hub_events (
    topic       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (topic, seq)
);
CREATE INDEX hub_events_created ON hub_events (created_at);

-- Content-addressed stored files; the bytes live under files/ in the data
-- directory, named by their SHA-256.
CREATE TABLE stored_files (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    mime        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE notices (
    id               INTEGER PRIMARY KEY,
    sender_id        BIGINT NOT NULL REFERENCES accounts (id),
    sender_name      TEXT NOT NULL,
    title            TEXT NOT NULL,
    body_html        TEXT NOT NULL,
    priority         TEXT NOT NULL,
    require_confirm  BIGINT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    withdrawn_at     BIGINT,
    last_reminded_at BIGINT
);

-- What the sender picked: organization subtrees and single members.
CREATE TABLE notice_targets (
    notice_id  BIGINT NOT NULL REFERENCES notices (id),
    org_id     BIGINT REFERENCES orgs (id),
    member_id  BIGINT REFERENCES members (id)
);
CREATE INDEX notice_targets_notice ON notice_targets (notice_id);

-- Recipients resolved when the notice is sent, with their receipts.
CREATE TABLE notice_recipients (
    notice_id     BIGINT NOT NULL REFERENCES notices (id),
    member_id     BIGINT NOT NULL REFERENCES members (id),
    org_id        BIGINT NOT NULL REFERENCES orgs (id),
    read_at       BIGINT,
    confirmed_at  BIGINT,
    reply         TEXT,
    PRIMARY KEY (notice_id, member_id)
);
CREATE INDEX notice_recipients_member ON notice_recipients (member_id);

CREATE TABLE notice_attachments (
    notice_id  BIGINT NOT NULL REFERENCES notices (id),
    sha256     TEXT NOT NULL REFERENCES stored_files (sha256),
    name       TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (notice_id, position)
);
