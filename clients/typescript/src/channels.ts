// Channel names (PROTOCOL.md#channels), so applications do not build them by hand.

import type { Channel } from "./types.js";

const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const channel = {
  /** `room:<name>`; throws on a name the server would refuse. */
  room(name: string): Channel {
    if (!ROOM_NAME.test(name)) throw new RangeError(`invalid room name ${JSON.stringify(name)}`);
    return `room:${name}`;
  },
  /** A user's notifications. */
  user: (id: string): Channel => `user:${id}`,
  /** A user's home feed. */
  feed: (id: string): Channel => `feed:${id}`,
};
