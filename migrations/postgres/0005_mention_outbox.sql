-- Mentions to process: written in the chat message's own transaction, deleted once its mention
-- notifications are stored. Until `lease_until` (Unix ms) the node that stored the message
-- handles it from memory; after it, any node's sweep takes it over (the node died first).
CREATE TABLE mention_outbox (
    channel     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    -- Takeovers so far: a row that keeps failing is given up after a few.
    attempts    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, seq)
);
CREATE INDEX mention_outbox_lease ON mention_outbox (lease_until);
