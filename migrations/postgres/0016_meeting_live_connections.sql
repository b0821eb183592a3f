-- Media connections of live meetings: one row per meeting, person and node
-- whose media engine has the person in it, with the number of connections
-- there. A person is on two nodes only while moving off a node that died.
-- `meeting_participants.live_connections` is the sum over the rows, and the
-- attendance interval stays open while it is above zero. Runtime state
-- only: backups skip it.
CREATE TABLE meeting_live_connections (
    meeting_id  BIGINT NOT NULL REFERENCES meetings (id),
    member_id   BIGINT NOT NULL REFERENCES members (id),
    node_id     TEXT NOT NULL,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    connections BIGINT NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, member_id, node_id)
);
CREATE INDEX meeting_live_connections_node ON meeting_live_connections (node_id);

-- Counters written before this table name no node. They become rows of the
-- node id '', which no node can have, so the first node to start (or the
-- sweep of nodes that are gone) closes their attendance.
INSERT INTO meeting_live_connections
    (meeting_id, member_id, node_id, account_id, connections, joined_at)
SELECT p.meeting_id, p.member_id, '', a.account_id, p.live_connections, 0
FROM meeting_participants p
JOIN (SELECT member_id, MIN(id) AS account_id FROM accounts
      WHERE member_id IS NOT NULL GROUP BY member_id) a ON a.member_id = p.member_id
WHERE p.live_connections > 0;
