-- Audio recordings of meetings: one mixed Ogg Opus file per recording,
-- written into the stored files directory's recordings/ folder while it runs.
CREATE TABLE meeting_recordings (
    id           INTEGER PRIMARY KEY,
    meeting_id   BIGINT NOT NULL REFERENCES meetings (id),
    -- File name inside recordings/.
    file_name    TEXT NOT NULL,
    started_by   BIGINT NOT NULL REFERENCES accounts (id),
    started_at   BIGINT NOT NULL,
    -- Empty while recording, and for a recording cut off when the server
    -- stopped; its file then holds the audio up to its last page (one second).
    ended_at     BIGINT,
    duration_ms  BIGINT NOT NULL DEFAULT 0,
    size         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX meeting_recordings_meeting ON meeting_recordings (meeting_id);
