// Message lifecycle against a real server: edits, deletes, reactions and replies through the
// SDK's helpers, seen live by another member and in history, folded by MessageFold into the same
// view either way; and read receipts reaching the room's other subscribers.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  foldMessages,
  isDelete,
  isEdit,
  isReaction,
  lifecycleOf,
  MessageFold,
  SwitchboardError,
  type Message,
  type ReadReceipt,
  type Switchboard,
} from "../src/index.js";
import { msgpackCodec } from "../src/msgpack.js";
import { startServer, until, userClient, type Server } from "./harness.js";

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => server.stop());

const is = (code: string) => (e: unknown) => e instanceof SwitchboardError && e.code === code;

/** The whole channel from HTTP history, page by page. */
async function wholeHistory(sb: Switchboard, channel: string): Promise<Message[]> {
  const all: Message[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await sb.api.channels.history(channel, { before, limit: 200 });
    if (page.length === 0) return all;
    all.unshift(...page);
    before = page[0]!.offset;
  }
}

test("edit, react, unreact and delete: seen live by another member and in history, folded alike", async () => {
  const alice = await userClient(server.url);
  const bob = await userClient(server.url);
  const room = `life${Date.now().toString(36)}`;
  const channel = `room:${room}`;
  await alice.api.rooms.create({ name: room, private: true, members: [bob.user!.username] });

  const live: Message[] = [];
  const fold = new MessageFold(bob.user!.id);
  const changed: number[][] = [];
  const sub = bob.subscribe(channel, {
    since: 0,
    onMessage: (m) => {
      live.push(m);
      changed.push(fold.add(m));
    },
  });
  await sub.ready;

  const hi = await alice.publish(channel, { text: "hi" });
  const reply = await bob.publish(channel, { text: "hi yourself", reply_to: hi });
  const edit = await alice.api.rooms.editMessage(room, hi, { text: "hello" });
  assert.ok(edit > reply, "an edit is a message of its own, with its own offset");
  const thumbsBob = await bob.api.rooms.react(room, hi, "👍");
  assert.equal(typeof thumbsBob, "number");
  assert.equal(await bob.api.rooms.react(room, hi, "👍"), null, "reacting again stores nothing");
  await alice.api.rooms.react(room, hi, "👍");
  await alice.api.rooms.react(room, hi, "🎉");
  const unreact = await alice.api.rooms.unreact(room, hi, "🎉");
  await assert.rejects(alice.api.rooms.unreact(room, hi, "🎉"), is("not_found"));
  await bob.api.rooms.react(room, hi, "🎉");

  // Who may do what.
  await assert.rejects(bob.api.rooms.editMessage(room, hi, { text: "mine now" }), is("forbidden"));
  await assert.rejects(bob.api.rooms.deleteMessage(room, hi), is("forbidden"));
  await assert.rejects(alice.api.rooms.editMessage(room, edit, { text: "x" }), is("unprocessable"), "an edit is not editable");
  await assert.rejects(alice.api.rooms.react(room, hi, "two words"), is("unprocessable"));
  await assert.rejects(bob.publish(channel, { kind: "edit", target: hi, data: { text: "forged" } }), is("bad_request"));

  const top = await alice.publish(channel, { text: "end of part one" });
  await until(() => live.at(-1)?.offset === top, "bob to see every change live");
  assert.deepEqual(live.map((m) => m.offset), live.map((_, i) => i + 1), "lifecycle messages take the room's offsets, gapless");

  // Live, each is a message of its kind, from whoever made it.
  const byOffset = new Map(live.map((m) => [m.offset, m]));
  const editMsg = byOffset.get(edit)!;
  assert.ok(isEdit(editMsg));
  assert.deepEqual(editMsg.data, { kind: "edit", target: hi, data: { text: "hello" } });
  assert.equal(editMsg.from, alice.user!.id);
  const reactions = live.filter(isReaction).map((m) => [m.from === bob.user!.id ? "bob" : "alice", m.data.emoji, m.data.op, m.data.count]);
  assert.deepEqual(reactions, [
    ["bob", "👍", "add", 1],
    ["alice", "👍", "add", 2],
    ["alice", "🎉", "add", 1],
    ["alice", "🎉", "remove", 0],
    ["bob", "🎉", "add", 1],
  ]);
  assert.equal(lifecycleOf(byOffset.get(unreact)!)?.kind, "reaction");
  assert.ok(changed[edit - 1]!.includes(hi), "folding the edit reports its target as changed");

  // Bob's live view of the message.
  const viewed = fold.get(hi)!;
  assert.deepEqual(viewed.data, { text: "hello" });
  assert.equal(viewed.edited_at, editMsg.ts);
  assert.equal(viewed.replies, 1);
  assert.deepEqual(viewed.reactions, [
    { emoji: "👍", count: 2, me: true },
    { emoji: "🎉", count: 1, me: true },
  ]);
  assert.equal(fold.get(edit), undefined, "an edit is not shown as a message");

  // History shows the message as it is now, with `me` for the reader.
  const asBob = await wholeHistory(bob, channel);
  const hiNow = asBob.find((m) => m.offset === hi)!;
  assert.deepEqual(hiNow.data, { text: "hello" });
  assert.equal(hiNow.edited_at, editMsg.ts);
  assert.equal(hiNow.replies, 1);
  assert.deepEqual(hiNow.reactions, viewed.reactions);
  const asAlice = (await alice.history(channel, { limit: 200 })).find((m) => m.offset === hi)!;
  assert.deepEqual(asAlice.reactions, [
    { emoji: "👍", count: 2, me: true },
    { emoji: "🎉", count: 1, me: false },
  ]);
  assert.equal(asBob.find((m) => m.offset === reply)!.replies, undefined, "unset fields are left out");
  // The fold gives the same view from the live messages as from a fresh history page.
  assert.deepEqual(fold.messages(), foldMessages(asBob, bob.user!.id));
  assert.deepEqual(foldMessages(live, alice.user!.id), foldMessages(await wholeHistory(alice, channel), alice.user!.id));

  // Delete: the author's, and a moderator's (the room's owner) of someone else's message.
  const gone = await alice.api.rooms.deleteMessage(room, hi);
  const bobs = await bob.publish(channel, { text: "something regrettable" });
  const modDelete = await alice.api.rooms.deleteMessage(room, bobs);
  await assert.rejects(bob.api.rooms.react(room, hi, "👀"), is("not_found"), "a deleted message takes no reactions");
  await assert.rejects(alice.api.rooms.editMessage(room, hi, { text: "back" }), is("not_found"));
  await until(() => live.at(-1)?.offset === modDelete, "bob to see the deletes");
  const deleteMsg = byOffsetOf(live, gone);
  assert.ok(isDelete(deleteMsg) && deleteMsg.data.target === hi && deleteMsg.from === alice.user!.id);
  for (const offset of [hi, bobs]) {
    const tomb = fold.get(offset)!;
    assert.equal(tomb.deleted, true);
    assert.equal(tomb.data, null);
    assert.equal(tomb.reactions, undefined);
  }
  const after = await wholeHistory(bob, channel);
  const hiAfter = after.find((m) => m.offset === hi)!;
  assert.equal(hiAfter.deleted, true);
  assert.equal(hiAfter.data, null);
  assert.equal(hiAfter.reactions, undefined, "its reactions are gone with it");
  assert.deepEqual(after.find((m) => m.offset === edit)!.data, { kind: "edit", target: hi }, "the edit's content is gone too");
  assert.deepEqual(fold.messages(), foldMessages(after, bob.user!.id), "live and history views agree on the tombstones");
  const trail = await alice.api.rooms.audit(room);
  assert.ok(trail.entries.some((e) => e.action === "message_deleted" && e.target === bob.user!.id));

  // The same state through MessagePack.
  const viaMsgpack = await userClient(server.url, { codec: msgpackCodec() });
  await alice.api.rooms.addMember(room, { user: viaMsgpack.user!.id });
  viaMsgpack.connect();
  const page = await until(() => viaMsgpack.connection.ready, "the msgpack socket").then(() => viaMsgpack.history(channel, { limit: 200 }));
  assert.deepEqual(
    page.filter((m) => m.offset <= modDelete).map((m) => [m.offset, m.deleted ?? false, m.replies ?? 0, m.edited_at ?? null]),
    after.map((m) => [m.offset, m.deleted ?? false, m.replies ?? 0, m.edited_at ?? null]),
  );
  for (const c of [alice, bob, viaMsgpack]) c.close();
});

function byOffsetOf(messages: Message[], offset: number): Message {
  const m = messages.find((x) => x.offset === offset);
  assert.ok(m, `message ${offset}`);
  return m;
}

test("a `since` replay after edits and replies folds to the same view as live delivery", async () => {
  const alice = await userClient(server.url);
  const bob = await userClient(server.url);
  const channel = `room:replay${Date.now().toString(36)}`;
  const room = channel.slice("room:".length);
  const first = await alice.publish(channel, { text: "one" });
  await bob.publish(channel, { text: "re one", reply_to: first });
  await bob.publish(channel, { text: "re one again", reply_to: first });
  await alice.api.rooms.editMessage(room, first, { text: "one, edited" });
  const last = await bob.api.rooms.react(room, first, "👍");

  // Replayed: message 1 comes with its state now, then the replies and the edit that made it.
  const replayed: Message[] = [];
  const sub = bob.subscribe(channel, { since: 0, onMessage: (m) => replayed.push(m) });
  await sub.ready;
  await until(() => replayed.at(-1)?.offset === last, "the replay");
  assert.equal(replayed[0]!.replies, 2, "replay carries the state now");
  assert.deepEqual(replayed[0]!.data, { text: "one, edited" });
  const view = foldMessages(replayed, bob.user!.id);
  assert.equal(view[0]!.replies, 2, "replies already counted are not counted again");
  assert.deepEqual(view, foldMessages(await wholeHistory(bob, channel), bob.user!.id));
  alice.close();
  bob.close();
});

test("read receipts: a member's marker moving reaches the room's other subscribers, never stored", async () => {
  const alice = await userClient(server.url);
  const bob = await userClient(server.url);
  const carol = await userClient(server.url);
  const room = `seen${Date.now().toString(36)}`;
  const channel = `room:${room}`;
  await alice.api.rooms.create({ name: room, private: true, members: [bob.user!.username, carol.user!.username] });

  const seenByBob: ReadReceipt[] = [];
  const messagesForBob: Message[] = [];
  const subBob = bob.subscribe(channel, { onRead: (r) => seenByBob.push(r), onMessage: (m) => messagesForBob.push(m) });
  const seenByCarol: ReadReceipt[] = [];
  const subCarol = carol.subscribe(channel, { onRead: (r) => seenByCarol.push(r) });
  await Promise.all([subBob.ready, subCarol.ready]);

  const one = await bob.publish(channel, { text: "one" });
  const two = await bob.publish(channel, { text: "two" });
  const marked = await alice.api.rooms.markRead(room, one);
  assert.equal(marked.offset, one);
  await until(() => seenByBob.length === 1 && seenByCarol.length === 1, "the receipt");
  assert.deepEqual(seenByBob[0], { user: { id: alice.user!.id, username: alice.user!.username }, offset: one });
  assert.deepEqual(seenByCarol, seenByBob);

  // A marker that does not move sends nothing; one that moves sends the new offset.
  await alice.api.rooms.markRead(room, one);
  await carol.api.rooms.markRead(room, two);
  await until(() => seenByBob.length === 2, "carol's receipt");
  assert.deepEqual(seenByBob[1], { user: { id: carol.user!.id, username: carol.user!.username }, offset: two });
  assert.deepEqual(
    subBob.readReceipts.map((r) => [r.user.id, r.offset]).sort(),
    [
      [alice.user!.id, one],
      [carol.user!.id, two],
    ].sort(),
  );

  // Receipts take no offset: the next message follows on, and history has none of them.
  const three = await bob.publish(channel, { text: "three" });
  assert.equal(three, two + 1);
  await until(() => messagesForBob.length === 3, "bob's messages");
  assert.deepEqual(messagesForBob.map((m) => m.offset), [one, two, three]);
  assert.deepEqual((await bob.history(channel)).map((m) => m.offset), [one, two, three]);
  // The state after a reconnect comes from read_state.
  const { members } = await bob.api.rooms.readState(room);
  assert.equal(members.find((m) => m.id === carol.user!.id)?.offset, two);
  for (const c of [alice, bob, carol]) c.close();
});
