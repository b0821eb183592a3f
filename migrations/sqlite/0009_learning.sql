-- Online cadre learning: courses and lessons, assignments, the credit-hour
-- ledger, study progress counted by the server, exams and yearly targets.
-- Credit hours are stored in hundredths (centi-hours) so that both
-- databases add them exactly.

CREATE TABLE learning_courses (
    id           INTEGER PRIMARY KEY,
    -- The organization whose officers manage the course.
    org_id       BIGINT NOT NULL REFERENCES orgs (id),
    title        TEXT NOT NULL,
    summary      TEXT NOT NULL,
    category     TEXT NOT NULL CHECK (category IN ('required', 'elective')),
    created_by   BIGINT NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX learning_courses_org ON learning_courses (org_id);

CREATE TABLE learning_lessons (
    id             INTEGER PRIMARY KEY,
    course_id      BIGINT NOT NULL REFERENCES learning_courses (id),
    position       BIGINT NOT NULL,
    title          TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('video', 'reading')),
    -- Length of the video, or the expected reading time, in milliseconds.
    duration_ms    BIGINT NOT NULL,
    -- Credit hours set by the organizer; NULL applies the rule by length.
    credit_centi   BIGINT,
    -- Fastest playback counted, in percent of real time.
    max_rate_pct   BIGINT NOT NULL,
    video_sha256   TEXT REFERENCES stored_files (sha256),
    video_mime     TEXT,
    body_html      TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX learning_lessons_course ON learning_lessons (course_id, position);

-- Who must or may take a course: a whole organization subtree or one member.
CREATE TABLE learning_assignments (
    id           INTEGER PRIMARY KEY,
    course_id    BIGINT NOT NULL REFERENCES learning_courses (id),
    org_id       BIGINT REFERENCES orgs (id),
    member_id    BIGINT REFERENCES members (id),
    deadline_at  BIGINT,
    assigned_by  BIGINT NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    CHECK ((org_id IS NULL) <> (member_id IS NULL))
);
CREATE INDEX learning_assignments_course ON learning_assignments (course_id);

-- Yearly targets per role: `member` for every member, or an officer role
-- such as `secretary`. A person's target is the largest of their roles.
CREATE TABLE learning_targets (
    year            BIGINT NOT NULL,
    role            TEXT NOT NULL,
    required_centi  BIGINT NOT NULL,
    elective_centi  BIGINT NOT NULL,
    PRIMARY KEY (year, role)
);

-- Study progress of one member on one lesson. `watched_until_ms` is the end
-- of the range watched without skipping from the start; `counted_ms` is
-- the study time the server accepted.
CREATE TABLE learning_progress (
    member_id         BIGINT NOT NULL REFERENCES members (id),
    lesson_id         BIGINT NOT NULL REFERENCES learning_lessons (id),
    position_ms       BIGINT NOT NULL,
    watched_until_ms  BIGINT NOT NULL,
    counted_ms        BIGINT NOT NULL,
    completed_at      BIGINT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (member_id, lesson_id)
);

-- The credit-hour ledger: completed lessons, passed exams and offline
-- training entered by an organizer.
CREATE TABLE learning_credits (
    id            INTEGER PRIMARY KEY,
    member_id     BIGINT NOT NULL REFERENCES members (id),
    year          BIGINT NOT NULL,
    category      TEXT NOT NULL CHECK (category IN ('required', 'elective')),
    centi         BIGINT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('lesson', 'exam', 'offline')),
    -- The lesson or exam the credit is for; NULL for offline training.
    ref_id        BIGINT,
    course_id     BIGINT REFERENCES learning_courses (id),
    note          TEXT NOT NULL,
    entered_by    BIGINT REFERENCES accounts (id),
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX learning_credits_once ON learning_credits (member_id, source, ref_id)
    WHERE ref_id IS NOT NULL;
CREATE INDEX learning_credits_year ON learning_credits (year, member_id);

-- Progress messages the server rejected, for organizers and auditors.
CREATE TABLE learning_rejections (
    id          INTEGER PRIMARY KEY,
    member_id   BIGINT NOT NULL REFERENCES members (id),
    lesson_id   BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX learning_rejections_member ON learning_rejections (member_id, created_at);

CREATE TABLE learning_questions (
    id           INTEGER PRIMARY KEY,
    course_id    BIGINT NOT NULL REFERENCES learning_courses (id),
    kind         TEXT NOT NULL CHECK (kind IN ('single', 'multiple', 'true_false', 'fill')),
    stem         TEXT NOT NULL,
    -- JSON array of option texts; empty for true/false and fill in the blank.
    options      TEXT NOT NULL,
    -- JSON: option indexes for choices, a boolean, or accepted texts.
    answer       TEXT NOT NULL,
    points       BIGINT NOT NULL
);
CREATE INDEX learning_questions_course ON learning_questions (course_id);

CREATE TABLE learning_exams (
    id              INTEGER PRIMARY KEY,
    course_id       BIGINT NOT NULL REFERENCES learning_courses (id),
    title           TEXT NOT NULL,
    question_count  BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    -- Pass mark in percent of the paper's points.
    pass_pct        BIGINT NOT NULL,
    max_attempts    BIGINT NOT NULL,
    credit_centi    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE learning_attempts (
    id            INTEGER PRIMARY KEY,
    exam_id       BIGINT NOT NULL REFERENCES learning_exams (id),
    member_id     BIGINT NOT NULL REFERENCES members (id),
    number        BIGINT NOT NULL,
    -- JSON array of the question ids drawn for this attempt, in order.
    paper         TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    deadline_at   BIGINT NOT NULL,
    submitted_at  BIGINT,
    answers       TEXT,
    score         BIGINT,
    total         BIGINT NOT NULL,
    passed        BIGINT,
    UNIQUE (exam_id, member_id, number)
);
