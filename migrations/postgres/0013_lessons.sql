-- Lesson editing, PDF reading lessons and study sessions shared by nodes.

-- A deleted lesson stays as a row so that the progress and the ledger
-- entries that refer to it keep their meaning; it leaves the course.
ALTER TABLE learning_lessons ADD COLUMN deleted_at BIGINT;
-- A reading lesson given as a PDF file instead of rich text.
ALTER TABLE learning_lessons ADD COLUMN pdf_sha256 TEXT REFERENCES stored_files (sha256);

-- The one active study session of each member, whichever node holds its
-- connection. A node counts a progress report only while the row still
-- carries its session's nonce. Runtime state only: backups skip it.
CREATE TABLE learning_study_claims (
    member_id   BIGINT PRIMARY KEY REFERENCES members (id),
    lesson_id   BIGINT NOT NULL,
    nonce       TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    claimed_at  BIGINT NOT NULL
);
