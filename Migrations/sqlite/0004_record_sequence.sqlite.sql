-- Each record row carries the sequence of its last change within its partition
-- (`PartitionSequences`): `POST /sync` returns the rows changed after a client's last position
-- in this order, which the server assigns, rather than by the timestamps clients write.
-- Rows written before this migration keep 0, which every position is past only once sent.
ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
