-- Core schema (SQLite). Integers are INTEGER (64-bit); timestamps are Unix milliseconds.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- One row per login. The refresh token is stored only as its SHA-256; rotation replaces it.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    refresh_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE rooms (
    name       TEXT PRIMARY KEY,
    private    INTEGER NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE room_members (
    room    TEXT NOT NULL REFERENCES rooms(name),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (room, user_id)
) WITHOUT ROWID;

-- The per-channel offset counter. Incremented in the same transaction as the message insert, so
-- offsets are gapless and the row lock serialises writers of one channel.
CREATE TABLE channels (
    name        TEXT PRIMARY KEY,
    last_offset INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
    channel TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    id      TEXT NOT NULL,
    sender  TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (channel, seq)
) WITHOUT ROWID;
