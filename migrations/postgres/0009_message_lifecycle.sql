-- Message lifecycle (issue 13): edits, deletes, replies and reactions on room messages.

-- An edit, delete or reaction is a message of its own (`kind`), about the message at `target`.
-- The original row then holds the latest version (`edited_at`) or, once deleted, no content
-- (`data` = 'null', `deleted_at`): history shows it in place with its offset unchanged.
ALTER TABLE messages ADD COLUMN kind TEXT;
ALTER TABLE messages ADD COLUMN target BIGINT;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;
-- A reply's parent (an offset of the same channel), and on the parent, how many replies it has.
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
ALTER TABLE messages ADD COLUMN replies BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_target ON messages (channel, target) WHERE target IS NOT NULL;

-- One row per user, emoji and message; history sums them per message.
CREATE TABLE message_reactions (
    channel    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, seq, user_id, emoji)
);

-- What a mention notification is about (the room message quoted in it), so deleting that
-- message can remove its content from the notifications too.
ALTER TABLE notifications ADD COLUMN about_channel TEXT;
ALTER TABLE notifications ADD COLUMN about_seq BIGINT;
CREATE INDEX notifications_about ON notifications (about_channel, about_seq)
    WHERE about_channel IS NOT NULL;

-- A room change whose system message is not stored yet (1), set in the change's own
-- transaction: a node that dies before storing it leaves the row for any node's sweep, so every
-- change reaches the room's channel. NULL once stored (and on rows from before this column).
ALTER TABLE room_audit ADD COLUMN announce_pending BIGINT;
CREATE INDEX room_audit_pending ON room_audit (id) WHERE announce_pending IS NOT NULL;
