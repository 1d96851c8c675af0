-- The run (incarnation) of each member a partition table was computed for, as a JSON array
-- in the order of `members` (see the PostgreSQL file; a node on SQLite runs alone and never
-- writes it, the column keeps both dialects at the same version).
ALTER TABLE cluster_partition_table ADD COLUMN member_incarnations TEXT NOT NULL DEFAULT '[]';
