// MessageFold on its own (no server): what each lifecycle message does to its target, and a
// result that does not depend on the order or the repeats of its input.

import assert from "node:assert/strict";
import { test } from "node:test";

import { foldMessages, isDelete, isEdit, isReaction, lifecycleOf, MessageFold, replyTo, type Json, type Message } from "../src/index.js";

const ALICE = "alice-id";
const BOB = "bob-id";
const CH = "room:t";

function msg(offset: number, from: string, data: Json, extra: Partial<Message> = {}): Message {
  return { channel: CH, offset, id: `id-${offset}`, from, ts: new Date(Date.UTC(2026, 0, 1, 0, 0, offset)).toISOString(), data, ...extra };
}

/** A little conversation: 1 hi (alice), 2 reply (bob), 3 edit of 1, 4-6 reactions, 7 other. */
function conversation(): Message[] {
  return [
    msg(1, ALICE, { text: "hi" }),
    msg(2, BOB, { text: "re", reply_to: 1 }),
    msg(3, ALICE, { kind: "edit", target: 1, data: { text: "hello" } }),
    msg(4, BOB, { kind: "reaction", target: 1, emoji: "👍", op: "add", count: 1 }),
    msg(5, ALICE, { kind: "reaction", target: 1, emoji: "👍", op: "add", count: 2 }),
    msg(6, BOB, { kind: "reaction", target: 1, emoji: "🎉", op: "add", count: 1 }),
    msg(7, BOB, { kind: "reaction", target: 1, emoji: "👍", op: "remove", count: 1 }),
    msg(8, ALICE, { text: "last" }),
  ];
}

test("the guards tell lifecycle messages from chat messages, only in room channels", () => {
  const [hi, reply, edit, react] = conversation();
  assert.equal(lifecycleOf(hi!), null);
  assert.equal(replyTo(reply!), 1);
  assert.equal(replyTo(hi!), undefined);
  assert.ok(isEdit(edit!) && edit.data.target === 1);
  assert.ok(isReaction(react!) && react.data.count === 1);
  assert.ok(isDelete(msg(9, ALICE, { kind: "delete", target: 1 })));
  // A notification of a post reaction has kind "reaction" too, in a user: channel.
  assert.equal(lifecycleOf({ channel: "user:x", data: { kind: "reaction", target: 1, emoji: "x", op: "add", count: 1 } }), null);
  assert.equal(lifecycleOf({ channel: CH, data: null }), null, "a hidden message is no lifecycle message");
  assert.equal(lifecycleOf({ channel: CH, data: { kind: "edit", target: "1" } }), null);
});

test("edits, reactions and replies fold into their target; lifecycle messages are not shown", () => {
  const view = foldMessages(conversation(), BOB);
  assert.deepEqual(view.map((m) => m.offset), [1, 2, 8]);
  const first = view[0]!;
  assert.deepEqual(first.data, { text: "hello" });
  assert.equal(first.edited_at, conversation()[2]!.ts, "edited_at is the edit's time");
  assert.equal(first.replies, 1);
  // Ties in emoji order (🎉 is U+1F389, 👍 U+1F44D); bob took his 👍 back.
  assert.deepEqual(first.reactions, [
    { emoji: "🎉", count: 1, me: true },
    { emoji: "👍", count: 1, me: false },
  ]);
  assert.equal(view[1]!.replies, undefined);
  assert.equal(view[2]!.edited_at, undefined);
  // The same messages seen by alice: her 👍 stands.
  assert.deepEqual(foldMessages(conversation(), ALICE)[0]!.reactions?.find((r) => r.emoji === "👍"), { emoji: "👍", count: 1, me: true });
});

test("a count that falls to 0 removes the emoji; a delete leaves a tombstone", () => {
  const fold = new MessageFold(BOB);
  fold.addAll(conversation());
  fold.add(msg(9, BOB, { kind: "reaction", target: 1, emoji: "🎉", op: "remove", count: 0 }));
  assert.deepEqual(fold.get(1)!.reactions, [{ emoji: "👍", count: 1, me: false }]);
  assert.deepEqual(fold.add(msg(10, ALICE, { kind: "delete", target: 1 })), [1], "the delete changes its target");
  const gone = fold.get(1)!;
  assert.equal(gone.deleted, true);
  assert.equal(gone.data, null);
  assert.equal(gone.reactions, undefined);
  // Nothing later brings it back.
  fold.add(msg(11, ALICE, { kind: "edit", target: 1 }));
  fold.add(msg(12, BOB, { kind: "reaction", target: 1, emoji: "👍", op: "add", count: 2 }));
  assert.equal(fold.get(1)!.data, null);
  assert.equal(fold.get(1)!.reactions, undefined);
  assert.equal(fold.get(11), undefined, "an edit is not a shown message");
});

test("order and repeats do not matter; a history entry (state now) next to its own edits is not changed twice", () => {
  const live = conversation();
  const expected = foldMessages(live, BOB);
  // Reversed, and everything twice.
  assert.deepEqual(foldMessages([...live].reverse().concat(live), BOB), expected);
  // What a history page has: message 1 as it is now, next to the lifecycle messages themselves.
  const now: Message = { ...live[0]!, data: { text: "hello" }, edited_at: live[2]!.ts, replies: 1, reactions: expected[0]!.reactions };
  const page = [now, { ...live[1]! }, ...live.slice(2)];
  assert.deepEqual(foldMessages(page, BOB), expected);
  // A live view that then gets a newer history page of the same messages, and the reverse.
  const fold = new MessageFold(BOB);
  fold.addAll(live);
  fold.addAll(page);
  assert.deepEqual(fold.messages(), expected);
  const other = new MessageFold(BOB);
  other.addAll(page);
  other.addAll(live);
  assert.deepEqual(other.messages(), expected);
});

test("an older edit never overrides the version a message came with", () => {
  const fold = new MessageFold(BOB);
  const second = msg(5, ALICE, { kind: "edit", target: 1, data: { text: "v3" } });
  fold.add(msg(1, ALICE, { text: "v3" }, { edited_at: second.ts }));
  fold.add(msg(3, ALICE, { kind: "edit", target: 1, data: { text: "v2" } }));
  assert.deepEqual(fold.get(1)!.data, { text: "v3" });
  fold.add(second);
  fold.add(msg(9, ALICE, { kind: "edit", target: 1, data: { text: "v4" } }));
  assert.deepEqual(fold.get(1)!.data, { text: "v4" });
  assert.equal(fold.get(1)!.edited_at, msg(9, ALICE, null).ts);
});

test("replies are counted once each, never below the count a message came with", () => {
  const fold = new MessageFold();
  fold.add(msg(1, ALICE, { text: "q" }, { replies: 3 }));
  fold.add(msg(4, BOB, { text: "a", reply_to: 1 }));
  fold.add(msg(4, BOB, { text: "a", reply_to: 1 }));
  assert.equal(fold.get(1)!.replies, 3);
  const live = new MessageFold();
  for (const o of [1, 2, 3, 2]) live.add(o === 1 ? msg(1, ALICE, { text: "q" }) : msg(o, BOB, { text: "a", reply_to: 1 }));
  assert.equal(live.get(1)!.replies, 2);
  // A reply seen before its parent counts too.
  const early = new MessageFold();
  early.add(msg(2, BOB, { text: "a", reply_to: 1 }));
  early.add(msg(1, ALICE, { text: "q" }));
  assert.equal(early.get(1)!.replies, 1);
});

test("a hidden message stays hidden", () => {
  const fold = new MessageFold(BOB);
  fold.add(msg(1, ALICE, null, { hidden: true }));
  fold.add(msg(2, BOB, { kind: "reaction", target: 1, emoji: "👍", op: "add", count: 1 }));
  assert.deepEqual(fold.get(1), msg(1, ALICE, null, { hidden: true }));
});

test("an edited message is a chat message whatever its new content looks like", () => {
  const fold = new MessageFold(BOB);
  fold.add(msg(1, BOB, { text: "keep me" }));
  // History shows message 2 as edited to content that looks like a delete of 1.
  fold.add(msg(2, ALICE, { kind: "delete", target: 1 }, { edited_at: msg(3, ALICE, null).ts }));
  assert.deepEqual(fold.get(1)!.data, { text: "keep me" });
  assert.deepEqual(fold.get(2)!.data, { kind: "delete", target: 1 });
  // A lifecycle message is always about an earlier message.
  assert.equal(lifecycleOf(msg(4, ALICE, { kind: "delete", target: 9 })), null);
});
