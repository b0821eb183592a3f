-- Host decisions and raised hands of a live meeting, per account, kept so
-- that they outlast a server restart. `admitted`, `removed` and `muted`
-- are 0 or 1; `hand_raised_at` is Unix milliseconds, null when lowered.
CREATE TABLE meeting_live_decisions (
    meeting_id      BIGINT NOT NULL REFERENCES meetings (id),
    account_id      BIGINT NOT NULL REFERENCES accounts (id),
    admitted        BIGINT NOT NULL DEFAULT 0,
    removed         BIGINT NOT NULL DEFAULT 0,
    muted           BIGINT NOT NULL DEFAULT 0,
    hand_raised_at  BIGINT,
    PRIMARY KEY (meeting_id, account_id)
);
