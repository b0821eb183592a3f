-- Meetings: schedule, participants, attendance, leave requests, excusals,
-- votes with open and secret ballots, and minutes.

CREATE TABLE meetings (
    id               INTEGER PRIMARY KEY,
    org_id           BIGINT NOT NULL REFERENCES orgs (id),
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    starts_at        BIGINT NOT NULL,
    ends_at          BIGINT NOT NULL,
    -- Empty when the meeting has no physical place.
    place            TEXT NOT NULL,
    online           BIGINT NOT NULL,
    host_member      BIGINT NOT NULL REFERENCES members (id),
    recorder_member  BIGINT NOT NULL REFERENCES members (id),
    -- scheduled, live, ended or cancelled.
    status           TEXT NOT NULL,
    locked           BIGINT NOT NULL DEFAULT 0,
    -- Revision of the calendar entry (the ICS SEQUENCE), raised by each edit.
    revision         BIGINT NOT NULL DEFAULT 0,
    notice_id        BIGINT,
    created_by       BIGINT NOT NULL REFERENCES accounts (id),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT,
    cancelled_at     BIGINT,
    cancel_reason    TEXT
);
CREATE INDEX meetings_org_start ON meetings (org_id, starts_at);
CREATE INDEX meetings_start ON meetings (starts_at);

CREATE TABLE meeting_agenda_items (
    meeting_id   BIGINT NOT NULL REFERENCES meetings (id),
    position     BIGINT NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    -- How a motion on this item passes: majority or two_thirds.
    pass_rule    TEXT NOT NULL,
    PRIMARY KEY (meeting_id, position)
);

-- Everyone expected at or admitted to the meeting. `voting` marks the
-- members of the meeting's body with voting rights; guests never vote.
CREATE TABLE meeting_participants (
    meeting_id         BIGINT NOT NULL REFERENCES meetings (id),
    member_id          BIGINT NOT NULL REFERENCES members (id),
    org_id             BIGINT NOT NULL REFERENCES orgs (id),
    -- required or optional.
    attendance         TEXT NOT NULL,
    voting             BIGINT NOT NULL,
    -- body, invited or walk_in.
    source             TEXT NOT NULL,
    -- Open media connections; the person is in the room while above 0.
    live_connections   BIGINT NOT NULL DEFAULT 0,
    marked_present_at  BIGINT,
    marked_by          BIGINT,
    -- present, absent or on_leave, set when the meeting ends.
    final_status       TEXT,
    PRIMARY KEY (meeting_id, member_id)
);
CREATE INDEX meeting_participants_member ON meeting_participants (member_id);

CREATE TABLE meeting_attendance (
    id          INTEGER PRIMARY KEY,
    meeting_id  BIGINT NOT NULL REFERENCES meetings (id),
    member_id   BIGINT NOT NULL REFERENCES members (id),
    joined_at   BIGINT NOT NULL,
    left_at     BIGINT
);
CREATE INDEX meeting_attendance_meeting ON meeting_attendance (meeting_id, member_id);

CREATE TABLE meeting_leave_requests (
    meeting_id     BIGINT NOT NULL REFERENCES meetings (id),
    member_id      BIGINT NOT NULL REFERENCES members (id),
    reason         TEXT NOT NULL,
    filed_at       BIGINT NOT NULL,
    -- pending, approved or rejected.
    status         TEXT NOT NULL,
    decided_by     BIGINT,
    decided_at     BIGINT,
    decision_note  TEXT,
    PRIMARY KEY (meeting_id, member_id)
);

-- A recorded decision that a member is excused from meetings for a period
-- (long illness, abroad): they leave the count of those required to attend.
CREATE TABLE meeting_excusals (
    id          INTEGER PRIMARY KEY,
    member_id   BIGINT NOT NULL REFERENCES members (id),
    reason      TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL,
    created_by  BIGINT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_by  BIGINT
);
CREATE INDEX meeting_excusals_member ON meeting_excusals (member_id);

CREATE TABLE meeting_votes (
    id                INTEGER PRIMARY KEY,
    meeting_id        BIGINT NOT NULL REFERENCES meetings (id),
    agenda_position   BIGINT,
    -- motion or election.
    kind              TEXT NOT NULL,
    title             TEXT NOT NULL,
    -- open or secret.
    ballot            TEXT NOT NULL,
    pass_rule         TEXT NOT NULL,
    seats             BIGINT NOT NULL,
    -- open or closed.
    status            TEXT NOT NULL,
    opened_by         BIGINT NOT NULL,
    opened_at         BIGINT NOT NULL,
    closed_by         BIGINT,
    closed_at         BIGINT,
    -- The tally and outcome as JSON, written when the ballot closes.
    result            TEXT
);
CREATE INDEX meeting_votes_meeting ON meeting_votes (meeting_id);

CREATE TABLE meeting_vote_candidates (
    vote_id    BIGINT NOT NULL REFERENCES meeting_votes (id),
    position   BIGINT NOT NULL,
    member_id  BIGINT REFERENCES members (id),
    name       TEXT NOT NULL,
    PRIMARY KEY (vote_id, position)
);

-- Who has voted: the only per-person trace of a ballot. The key makes a
-- second vote by the same person fail in the database.
CREATE TABLE meeting_voters (
    vote_id    BIGINT NOT NULL REFERENCES meeting_votes (id),
    member_id  BIGINT NOT NULL REFERENCES members (id),
    PRIMARY KEY (vote_id, member_id)
);

-- Open ballots (举手表决): the choice is public and named.
CREATE TABLE meeting_open_ballots (
    vote_id    BIGINT NOT NULL REFERENCES meeting_votes (id),
    member_id  BIGINT NOT NULL REFERENCES members (id),
    choice     TEXT NOT NULL,
    PRIMARY KEY (vote_id, member_id)
);

-- Secret ballots: no voter, no time, a random key and no rowid, so neither
-- the rows nor their key order say who cast them. Closing the ballot
-- rewrites the rows in shuffled order under fresh keys.
CREATE TABLE meeting_secret_ballots (
    vote_id     BIGINT NOT NULL,
    ballot_key  TEXT NOT NULL,
    choice      TEXT NOT NULL,
    PRIMARY KEY (vote_id, ballot_key)
) WITHOUT ROWID;

CREATE TABLE meeting_minutes (
    meeting_id        BIGINT PRIMARY KEY REFERENCES meetings (id),
    body_html         TEXT NOT NULL,
    version           BIGINT NOT NULL,
    saved_by          BIGINT,
    saved_by_name     TEXT NOT NULL,
    saved_at          BIGINT NOT NULL,
    approved_by       BIGINT,
    approved_by_name  TEXT,
    approved_at       BIGINT
);
