-- Direct messages and blocks (issue 13).

-- A direct message is a private room of exactly two users, named after the pair
-- (`dm.<hash>`): no owner, no roles to change, nobody added or removed.
ALTER TABLE rooms ADD COLUMN dm BIGINT NOT NULL DEFAULT 0;

-- `user_id` blocked `blocked`: no direct messages between them, no notifications from the
-- blocked user to the blocker.
CREATE TABLE blocks (
    user_id TEXT NOT NULL REFERENCES users(id),
    blocked TEXT NOT NULL REFERENCES users(id),
    at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked)
);
CREATE INDEX blocks_blocked ON blocks (blocked);
