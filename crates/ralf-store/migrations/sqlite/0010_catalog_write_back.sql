-- The write-back of a finished rollout (docs/catalog.md#write-back), as JSON: the commit ralf
-- pushed, or why it pushed none; NULL while nothing was tried (write-back off, or not yet).
ALTER TABLE catalog_rollouts ADD COLUMN write_back TEXT;
