-- Leases on background tasks, so that one node at a time runs each of them
-- when several nodes share the database. Runtime state only: backups skip it.
CREATE TABLE node_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
