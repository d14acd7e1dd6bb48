-- Login profiles as IAM reports them, and version ids that are never reused.

-- `created` of profiles set before this migration is unknown: 0 (1970-01-01).
ALTER TABLE login_profiles ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_profiles ADD COLUMN password_reset_required INTEGER NOT NULL DEFAULT 0
    CHECK (password_reset_required IN (0, 1));

-- The number of the last version id handed out (`v3` → 3). IAM does not reuse a deleted
-- version's id, so the next id comes from here, not from the versions that remain.
ALTER TABLE managed_policies ADD COLUMN last_version INTEGER NOT NULL DEFAULT 1;
UPDATE managed_policies SET last_version = COALESCE(
    (SELECT MAX(CAST(SUBSTR(v.version_id, 2) AS INTEGER))
     FROM policy_versions v WHERE v.policy_arn = managed_policies.arn),
    1);
