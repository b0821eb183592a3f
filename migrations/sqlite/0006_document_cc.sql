-- Organizations a document is copied to (抄送机关), in the drafter's order.
CREATE TABLE document_cc (
    document_id  BIGINT NOT NULL REFERENCES documents (id),
    org_id       BIGINT NOT NULL REFERENCES orgs (id),
    position     BIGINT NOT NULL,
    PRIMARY KEY (document_id, org_id)
);
