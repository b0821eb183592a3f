-- Files attached to a document, in the drafter's order.
CREATE TABLE document_attachments (
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    position     BIGINT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES stored_files (sha256),
    name         TEXT NOT NULL,
    PRIMARY KEY (document_id, position)
);
