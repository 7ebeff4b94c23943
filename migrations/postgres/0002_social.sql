-- Feeds, notifications and mutes (postgres). See docs/FEEDS.md for the design.
--
-- Followers and authors are identified by their access token, not a users row (load-test tokens
-- minted with the shared secret have none), so only the followee/target of an action must exist;
-- usernames are immutable and stored beside the ids so listings need no join.

-- The follow graph. The serial id is the pagination cursor and the fan-out cursor: a post's
-- fan-out walks the author's followers in id order and records how far it got.
CREATE TABLE follows (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    follower      TEXT NOT NULL,
    follower_name TEXT NOT NULL,
    followee      TEXT NOT NULL REFERENCES users(id),
    followee_name TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (follower, followee)
);
CREATE INDEX follows_followers ON follows(followee, id);
CREATE INDEX follows_following ON follows(follower, id);

-- Posts and replies (reply_to set). A post's fan-out into its followers' feed:<id> channels is
-- resumable: fanout_after is the last follows.id whose feed has the post, committed in the same
-- transaction as those feed messages; fanout_owner/fanout_lease say which node is working on it
-- (another node takes over once the lease runs out). Replies are not fanned out (fanout_done = 1).
CREATE TABLE posts (
    id           TEXT PRIMARY KEY,
    author       TEXT NOT NULL,
    author_name  TEXT NOT NULL,
    reply_to     TEXT REFERENCES posts(id),
    data         TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    fanout_after BIGINT NOT NULL DEFAULT 0,
    fanout_done  BIGINT NOT NULL,
    fanout_owner TEXT,
    fanout_lease BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX posts_by_author ON posts(author, id);
CREATE INDEX posts_replies ON posts(reply_to, id) WHERE reply_to IS NOT NULL;
CREATE INDEX posts_fanout_pending ON posts(fanout_lease) WHERE fanout_done = 0;

CREATE TABLE reactions (
    post_id    TEXT NOT NULL REFERENCES posts(id),
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id, emoji)
);

-- The read state of notifications. The notification itself is the message at (user:<user_id>,
-- seq) in messages, written in the same transaction as this row.
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at    BIGINT
);
CREATE INDEX notifications_by_user ON notifications(user_id, seq);
CREATE INDEX notifications_unread ON notifications(user_id, seq) WHERE read_at IS NULL;

-- What a user muted: kind 'room' (target = room name) or 'user' (target = user id).
CREATE TABLE mutes (
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, target)
);
