// Room membership and moderation through the SDK: the typed helpers, system messages that keep
// a member list live, and a removal ending the removed member's subscription.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { isRoomChange, SwitchboardError, type Message, type RoomChange } from "../src/index.js";
import { startServer, until, userClient, type Server } from "./harness.js";

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => server.stop());

test("members, roles and bans through the SDK; every change reaches subscribers as a system message", async () => {
  const owner = await userClient(server.url);
  const bob = await userClient(server.url);
  const carol = await userClient(server.url);
  const room = `crew${Date.now().toString(36)}`;
  const created = await owner.api.rooms.create({ name: room, private: true, members: [bob.user!.username] });
  assert.equal(created.role, "owner");

  const changes: RoomChange[] = [];
  const seen: Message[] = [];
  const watch = bob.subscribe(`room:${room}`, {
    since: 0,
    onMessage: (m) => {
      seen.push(m);
      if (isRoomChange(m)) changes.push(m.data);
    },
  });
  await watch.ready;

  const added = await owner.api.rooms.addMember(room, { username: carol.user!.username });
  assert.equal(added.role, "member");
  const ended: SwitchboardError[] = [];
  const carolSub = carol.subscribe(`room:${room}`, { onError: (e) => ended.push(e) });
  await carolSub.ready;
  await owner.api.rooms.setRole(room, bob.user!.id, "admin");
  await assert.rejects(carol.api.rooms.ban(room, bob.user!.id), (e: unknown) => e instanceof SwitchboardError && e.code === "forbidden");
  await bob.api.rooms.ban(room, carol.user!.id);
  await until(() => ended.length === 1, "carol's subscription to end");
  assert.equal(ended[0]!.code, "forbidden");
  await assert.rejects(carol.history(`room:${room}`), (e: unknown) => e instanceof SwitchboardError && e.code === "forbidden");

  const { members } = await bob.api.rooms.members(room);
  const byId = (a: string[], b: string[]) => a[0]!.localeCompare(b[0]!);
  assert.deepEqual(
    members.map((m) => [m.id, m.role]).sort(byId),
    [
      [owner.user!.id, "owner"],
      [bob.user!.id, "admin"],
    ].sort(byId),
  );
  await until(() => changes.length === 3, "three system messages");
  assert.deepEqual(
    changes.map((c) => [c.kind, c.user?.id]),
    [
      ["member_added", carol.user!.id],
      ["role_changed", bob.user!.id],
      ["banned", carol.user!.id],
    ],
  );
  assert.deepEqual(seen.map((m) => m.offset), [1, 2, 3], "system messages take the room's offsets");
  const trail = await owner.api.rooms.audit(room);
  assert.deepEqual(trail.entries.map((e) => e.action), ["banned", "role_changed", "member_added"]);
  for (const c of [owner, bob, carol]) c.close();
});

test("typing: others see who is typing, and the stop; nobody sees themselves; nothing is stored", async () => {
  const a = await userClient(server.url);
  const b = await userClient(server.url);
  const room = `room:talk${Date.now().toString(36)}`;
  const seenByB: string[][] = [];
  const seenByA: string[][] = [];
  const subB = b.subscribe(room, { onTyping: (users) => seenByB.push(users.map((u) => u.id)) });
  const subA = a.subscribe(room, { onTyping: (users) => seenByA.push(users.map((u) => u.id)) });
  await Promise.all([subA.ready, subB.ready]);
  a.typing(room);
  a.typing(room); // within the SDK's pace: not sent
  await until(() => seenByB.length === 1, "b to see a typing");
  assert.deepEqual(seenByB[0], [a.user!.id]);
  assert.deepEqual(subB.typingUsers.map((u) => u.id), [a.user!.id]);
  a.typing(room, false);
  await until(() => seenByB.length === 2, "b to see a stop");
  assert.deepEqual(seenByB[1], []);
  assert.deepEqual(seenByA, [], "one's own signals are not shown");
  assert.deepEqual(await b.history(room), [], "typing is never stored");
  a.close();
  b.close();
});
