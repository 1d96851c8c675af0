-- The run (incarnation) of each member a partition table was computed for, in the order of
-- `members`. A node that restarts gets a new incarnation; a table that still names its
-- previous run is not its own: the coordinator first fails that run's partitions over (its
-- backups hold what it acknowledged) and drops it as a backup (its copies are gone), and
-- the new run ignores such a table instead of serving under the previous run's epochs.
-- Empty for tables written before this migration: no member's run is known then.
ALTER TABLE cluster_partition_table ADD COLUMN IF NOT EXISTS member_incarnations TEXT[] NOT NULL DEFAULT '{}';
