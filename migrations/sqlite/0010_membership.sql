-- Membership work: the development pipeline with its steps and reminders,
-- dues, transfers of the organization relation and mobile members.

-- A person in the development pipeline. Personal fields are kept here until
-- the higher committee's approval creates the member record (member_id).
CREATE TABLE membership_people (
    id          INTEGER PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs (id),
    member_id   BIGINT REFERENCES members (id),
    name        TEXT NOT NULL,
    gender      TEXT NOT NULL,
    ethnicity   TEXT NOT NULL,
    birth_date  TEXT NOT NULL,                                -- YYYY-MM-DD
    education   TEXT NOT NULL,
    phone       TEXT NOT NULL,
    id_number   TEXT NOT NULL UNIQUE,
    -- applicant, activist, candidate, probationary or full.
    stage       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX membership_people_org ON membership_people (org_id);

-- One recorded step. late_since is the missed deadline of a step recorded
-- late, which then carries its reason in exception_reason.
CREATE TABLE membership_steps (
    id                INTEGER PRIMARY KEY,
    person_id         BIGINT NOT NULL REFERENCES membership_people (id),
    step              TEXT NOT NULL,
    taken_on          TEXT NOT NULL,                          -- YYYY-MM-DD
    detail            TEXT NOT NULL,                          -- JSON
    vote_id           BIGINT REFERENCES meeting_votes (id),
    late_since        TEXT,
    exception_reason  TEXT,
    recorded_by       BIGINT NOT NULL REFERENCES accounts (id),
    recorded_at       BIGINT NOT NULL
);
CREATE INDEX membership_steps_person ON membership_steps (person_id);

-- Each due step is reminded once and escalated once.
CREATE TABLE membership_reminders (
    person_id     BIGINT NOT NULL REFERENCES membership_people (id),
    step          TEXT NOT NULL,
    due_on        TEXT NOT NULL,
    reminded_at   BIGINT,
    escalated_at  BIGINT,
    -- Set when the step is recorded; open reminders count as to-dos.
    done_at       BIGINT,
    PRIMARY KEY (person_id, step, due_on)
);

-- How a member's monthly dues are computed: salaried or retired (a rate of
-- the monthly after-tax income) or a fixed amount. Amounts in fen.
CREATE TABLE dues_profiles (
    member_id    BIGINT PRIMARY KEY REFERENCES members (id),
    kind         TEXT NOT NULL,
    income_fen   BIGINT NOT NULL,
    fixed_fen    BIGINT NOT NULL,
    since_month  TEXT NOT NULL,                               -- YYYY-MM
    updated_at   BIGINT NOT NULL
);

CREATE TABLE dues_payments (
    id           INTEGER PRIMARY KEY,
    member_id    BIGINT NOT NULL REFERENCES members (id),
    org_id       BIGINT NOT NULL REFERENCES orgs (id),
    month        TEXT NOT NULL,                               -- YYYY-MM
    amount_fen   BIGINT NOT NULL,
    paid_on      TEXT NOT NULL,
    recorded_by  BIGINT NOT NULL REFERENCES accounts (id),
    recorded_at  BIGINT NOT NULL,
    UNIQUE (member_id, month)
);

-- The reminder sent when a member nears six unpaid months, once per
-- first unpaid month.
CREATE TABLE dues_reminders (
    member_id     BIGINT NOT NULL REFERENCES members (id),
    unpaid_since  TEXT NOT NULL,
    reminded_at   BIGINT NOT NULL,
    PRIMARY KEY (member_id, unpaid_since)
);

-- A transfer of a member's organization relation (组织关系转接). to_org_id
-- is empty for a transfer out of the deployment, whose signed letter is
-- exported; from_org_id is empty for a letter imported from outside.
CREATE TABLE membership_transfers (
    id               INTEGER PRIMARY KEY,
    member_id        BIGINT NOT NULL REFERENCES members (id),
    from_org_id      BIGINT REFERENCES orgs (id),
    from_org_name    TEXT NOT NULL,
    to_org_id        BIGINT REFERENCES orgs (id),
    to_org_name      TEXT NOT NULL,
    letter_no        TEXT NOT NULL UNIQUE,
    issued_on        TEXT NOT NULL,
    valid_until      TEXT NOT NULL,
    dues_paid_until  TEXT NOT NULL,                           -- YYYY-MM
    reason           TEXT NOT NULL,
    -- pending, accepted (receipt returned), rejected, expired or exported.
    status           TEXT NOT NULL,
    receipt_on       TEXT,
    note             TEXT NOT NULL DEFAULT '',
    created_by       BIGINT NOT NULL REFERENCES accounts (id),
    created_at       BIGINT NOT NULL,
    decided_by       BIGINT REFERENCES accounts (id),
    decided_at       BIGINT
);
CREATE INDEX membership_transfers_from ON membership_transfers (from_org_id);
CREATE INDEX membership_transfers_to ON membership_transfers (to_org_id);

-- A mobile member (流动党员) registered with a host organization while the
-- relation stays home. grantees lists, as JSON, the host officers given
-- write access to the member's record by this registration, which ending
-- it removes again.
CREATE TABLE membership_mobile (
    id           INTEGER PRIMARY KEY,
    member_id    BIGINT NOT NULL REFERENCES members (id),
    host_org_id  BIGINT NOT NULL REFERENCES orgs (id),
    starts_on    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    -- active or ended.
    status       TEXT NOT NULL,
    grantees     TEXT NOT NULL,
    created_by   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX membership_mobile_member ON membership_mobile (member_id);
CREATE INDEX membership_mobile_host ON membership_mobile (host_org_id);
