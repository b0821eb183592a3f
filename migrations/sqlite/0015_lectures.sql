-- Live lectures: a lesson of kind `live` backed by a meeting in lecture
-- mode, its presenters, the questions and quick polls of its audience.

-- SQLite cannot change a CHECK constraint, so learning_lessons is rebuilt
-- with `live` added to its kinds. Foreign keys of learning_progress and the
-- other child tables are checked at commit, after the rows are back.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE learning_lessons_copy AS SELECT * FROM learning_lessons;
DROP TABLE learning_lessons;
CREATE TABLE learning_lessons (
    id             INTEGER PRIMARY KEY,
    course_id      BIGINT NOT NULL REFERENCES learning_courses (id),
    position       BIGINT NOT NULL,
    title          TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('video', 'reading', 'live')),
    -- Length of the video, or the expected reading time, in milliseconds.
    duration_ms    BIGINT NOT NULL,
    -- Credit hours set by the organizer; NULL applies the rule by length.
    credit_centi   BIGINT,
    -- Fastest playback counted, in percent of real time.
    max_rate_pct   BIGINT NOT NULL,
    video_sha256   TEXT REFERENCES stored_files (sha256),
    video_mime     TEXT,
    body_html      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    -- A deleted lesson stays as a row and leaves the course.
    deleted_at     BIGINT,
    -- A reading lesson given as a PDF file instead of rich text.
    pdf_sha256     TEXT REFERENCES stored_files (sha256)
);
INSERT INTO learning_lessons SELECT * FROM learning_lessons_copy;
DROP TABLE learning_lessons_copy;
CREATE INDEX learning_lessons_course ON learning_lessons (course_id, position);

CREATE TABLE learning_lectures (
    lesson_id         BIGINT PRIMARY KEY REFERENCES learning_lessons (id),
    meeting_id        BIGINT NOT NULL UNIQUE REFERENCES meetings (id),
    lecturer_member   BIGINT NOT NULL REFERENCES members (id),
    starts_at         BIGINT NOT NULL,
    -- When the lecture ended and its attendance was credited; it starts
    -- when its meeting goes live (meetings.started_at).
    ended_at          BIGINT,
    -- The video lesson made from the lecture's recording.
    recording_lesson  BIGINT REFERENCES learning_lessons (id),
    created_by        BIGINT NOT NULL REFERENCES accounts (id),
    created_at        BIGINT NOT NULL
);

-- Co-presenters: members besides the lecturer who may publish.
CREATE TABLE learning_lecture_presenters (
    lesson_id  BIGINT NOT NULL REFERENCES learning_lectures (lesson_id),
    member_id  BIGINT NOT NULL REFERENCES members (id),
    PRIMARY KEY (lesson_id, member_id)
);

CREATE TABLE learning_lecture_questions (
    id           INTEGER PRIMARY KEY,
    lesson_id    BIGINT NOT NULL REFERENCES learning_lectures (lesson_id),
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    author_name  TEXT NOT NULL,
    text         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    answered_by  BIGINT REFERENCES accounts (id)
);
CREATE INDEX learning_lecture_questions_lesson ON learning_lecture_questions (lesson_id, id);

CREATE TABLE learning_lecture_polls (
    id          INTEGER PRIMARY KEY,
    lesson_id   BIGINT NOT NULL REFERENCES learning_lectures (lesson_id),
    question    TEXT NOT NULL,
    -- The choices as a JSON array of strings.
    options     TEXT NOT NULL,
    created_by  BIGINT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    closed_at   BIGINT
);
CREATE INDEX learning_lecture_polls_lesson ON learning_lecture_polls (lesson_id, id);

-- One answer per account and poll: the index of the chosen option.
CREATE TABLE learning_lecture_poll_answers (
    poll_id     BIGINT NOT NULL REFERENCES learning_lecture_polls (id),
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    choice      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (poll_id, account_id)
);
