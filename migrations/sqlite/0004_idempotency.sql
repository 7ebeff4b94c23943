-- Idempotent publish: a client-chosen key per publisher and channel. A retry with the same key
-- finds the first attempt's row (and its offset) instead of being stored again. The key lives as
-- long as the message, so the window is the message's lifetime. NULL (no key) is never unique,
-- and the partial index holds only keyed rows; on an existing table its build reads the table once.
ALTER TABLE messages ADD COLUMN idem_key TEXT;
CREATE UNIQUE INDEX messages_idem_key ON messages (channel, sender, idem_key) WHERE idem_key IS NOT NULL;
