-- Read state (issue 13): how far each user has read each room, as the offset of the last message
-- they have seen. Only moves forward.
CREATE TABLE room_reads (
    room      TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    last_read BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (room, user_id)
);
CREATE INDEX room_reads_user ON room_reads (user_id);
