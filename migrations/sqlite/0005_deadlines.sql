-- Step deadlines in working days.

-- Exceptions to the Monday-to-Friday working week, year by year: public
-- holidays that fall on weekdays and the weekend days worked to make up
-- for them (调休).
CREATE TABLE calendar_days (
    day   TEXT PRIMARY KEY,                                   -- YYYY-MM-DD
    kind  TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name  TEXT NOT NULL DEFAULT ''
);

-- When an open task is due (end of its last working day, Unix ms), and
-- when its assignee was reminded and its assignee's superior told.
ALTER TABLE document_tasks ADD COLUMN due_at BIGINT;
ALTER TABLE document_tasks ADD COLUMN reminded_at BIGINT;
ALTER TABLE document_tasks ADD COLUMN escalated_at BIGINT;
CREATE INDEX document_tasks_due ON document_tasks (due_at);
