-- Temporary branches (临时党支部) of mobile members under a host
-- organization. The branch itself is a row of orgs with kind
-- temporary_branch; this table keeps its 负责人, end date and state.
CREATE TABLE membership_temporary_branches (
    org_id            BIGINT PRIMARY KEY REFERENCES orgs (id),
    host_org_id       BIGINT NOT NULL REFERENCES orgs (id),
    leader_member_id  BIGINT NOT NULL REFERENCES members (id),
    ends_on           TEXT NOT NULL,                          -- YYYY-MM-DD
    -- active or dissolved.
    status            TEXT NOT NULL,
    created_by        BIGINT NOT NULL REFERENCES accounts (id),
    created_at        BIGINT NOT NULL,
    -- Empty for a branch dissolved by the sweep at its end date.
    dissolved_by      BIGINT REFERENCES accounts (id),
    dissolved_at      BIGINT
);
CREATE INDEX membership_temporary_branches_host ON membership_temporary_branches (host_org_id);

-- The temporary branch a mobile member belongs to for meetings and study,
-- while the registration lasts and the branch is active.
ALTER TABLE membership_mobile ADD COLUMN temporary_branch_id BIGINT REFERENCES orgs (id);

-- New registrations store an empty grantees list, because the host
-- officers' access to a mobile member is computed from org_roles.
