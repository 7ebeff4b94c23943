-- Membership and moderation of rooms (issue 13).

-- A member's role: 'owner' (one per room), 'admin' or 'member'. The creator owns the room.
ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE room_members ADD COLUMN joined_at INTEGER NOT NULL DEFAULT 0;
UPDATE room_members SET role = 'owner'
    WHERE EXISTS (SELECT 1 FROM rooms r WHERE r.name = room_members.room
                  AND r.created_by = room_members.user_id);

-- The display title (the name never changes: it is the channel), read-only rooms, and deleted
-- ones: a deleted room keeps its row so that its name (and its channel's offsets) are never
-- handed to someone else, while its messages and members are gone.
ALTER TABLE rooms ADD COLUMN title TEXT;
ALTER TABLE rooms ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- Banned from a room: refused reading and writing, and cannot be added back until unbanned.
CREATE TABLE room_bans (
    room      TEXT NOT NULL REFERENCES rooms(name),
    user_id   TEXT NOT NULL REFERENCES users(id),
    banned_by TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (room, user_id)
);

-- Timed out in a room: may read, may not publish until `until` (Unix ms).
CREATE TABLE room_timeouts (
    room      TEXT NOT NULL REFERENCES rooms(name),
    user_id   TEXT NOT NULL REFERENCES users(id),
    until     INTEGER NOT NULL,
    set_by    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (room, user_id)
);

-- Who did what to whom in which room, and when: membership, role, ban, timeout and message
-- moderation actions. Kept when the room is deleted.
CREATE TABLE room_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    room    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT,
    at      INTEGER NOT NULL
);
CREATE INDEX room_audit_room ON room_audit (room, id);
