-- Hardening after the December 2026 security audit.

-- A room's access rules carry the time they last changed, so each node's storage poll finds the
-- changes it missed on the bus and ends the live subscriptions they refuse (F1).
ALTER TABLE rooms ADD COLUMN acl_changed_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rooms_acl_changed ON rooms(acl_changed_at);

-- Usernames and room names are unique ignoring case (F21); the display case is kept. Start-up
-- checks for case-variant duplicates first and refuses, naming them, rather than fail here.
CREATE UNIQUE INDEX users_username_nocase ON users(lower(username));
CREATE UNIQUE INDEX rooms_name_nocase ON rooms(lower(name));
-- A room can be created only on a name none of whose case variants has history.
CREATE INDEX channels_name_nocase ON channels(lower(name));

-- Refresh rotation remembers the hashes of a session's earlier refresh tokens (space-separated,
-- newest first, a few) and when it last rotated: only a token of that list counts as reuse, and a
-- retry of the token rotated moments ago does not (F15).
ALTER TABLE sessions ADD COLUMN previous_hashes TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN rotated_at INTEGER NOT NULL DEFAULT 0;
