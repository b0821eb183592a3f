-- Document approval: templates, documents with body versions, the signed
-- action log, open tasks, participants and the document number register.

CREATE TABLE approval_templates (
    id          INTEGER PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    created_by  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, name, version)
);

CREATE TABLE documents (
    id                INTEGER PRIMARY KEY,
    org_id            BIGINT NOT NULL REFERENCES orgs (id),
    drafter_account   BIGINT NOT NULL REFERENCES accounts (id),
    drafter_member    BIGINT NOT NULL REFERENCES members (id),
    title             TEXT NOT NULL,
    doc_type          TEXT NOT NULL,
    security_level    TEXT NOT NULL,
    urgency           TEXT NOT NULL,
    template_id       BIGINT NOT NULL REFERENCES approval_templates (id),
    -- The workflow instance as JSON, and its version for optimistic checks.
    workflow          TEXT NOT NULL,
    workflow_version  BIGINT NOT NULL,
    status            TEXT NOT NULL,
    body_version      BIGINT NOT NULL,
    number_prefix     TEXT NOT NULL,
    number_text       TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX documents_drafter ON documents (drafter_member);

CREATE TABLE document_versions (
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    version      BIGINT NOT NULL,
    body_html    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    author       BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (document_id, version)
);

-- Every workflow action, signed by the server over the action and the hash
-- of the body version it applies to.
CREATE TABLE document_actions (
    document_id       BIGINT NOT NULL REFERENCES documents (id),
    workflow_version  BIGINT NOT NULL,
    actor_member      BIGINT NOT NULL,
    actor_name        TEXT NOT NULL,
    action            TEXT NOT NULL,
    body_version      BIGINT NOT NULL,
    body_sha256       TEXT NOT NULL,
    signature         TEXT NOT NULL,
    at                BIGINT NOT NULL,
    PRIMARY KEY (document_id, workflow_version)
);

-- Open tasks, kept in step with the workflow state for to-do lists.
CREATE TABLE document_tasks (
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    task_id      BIGINT NOT NULL,
    member_id    BIGINT NOT NULL REFERENCES members (id),
    work         TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    PRIMARY KEY (document_id, task_id)
);
CREATE INDEX document_tasks_member ON document_tasks (member_id);

-- Everyone on a document's route, copied or circulated: who may read it.
CREATE TABLE document_participants (
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    member_id    BIGINT NOT NULL REFERENCES members (id),
    PRIMARY KEY (document_id, member_id)
);
CREATE INDEX document_participants_member ON document_participants (member_id);

-- Document numbers (文号): consecutive per organization, prefix and year.
CREATE TABLE number_register (
    org_id       BIGINT NOT NULL REFERENCES orgs (id),
    prefix       TEXT NOT NULL,
    year         BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    number_text  TEXT NOT NULL,
    status       TEXT NOT NULL,
    void_reason  TEXT,
    assigned_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, prefix, year, seq)
);

-- The last number handed out per organization, prefix and year; updating
-- it first serializes concurrent sign-offs.
CREATE TABLE number_counters (
    org_id    BIGINT NOT NULL,
    prefix    TEXT NOT NULL,
    year      BIGINT NOT NULL,
    last_seq  BIGINT NOT NULL,
    PRIMARY KEY (org_id, prefix, year)
);
