// A room's messages as they are now, from the messages of its channel: edits, deletes and
// reactions are messages of their own (PROTOCOL.md, "Message lifecycle"), folded here into the
// message they are about, and replies counted on their parent. Pure bookkeeping, no I/O.
//
// The result does not depend on the order messages come in, nor on how often: a live message,
// the same message again in a `since` replay, and a history page (whose entries already show
// their state now, next to the very edits and reactions that made it) give one view. That is
// why each effect is kept per target and the shown message is recomputed from them:
// - an edit applies when it is at least as recent as the `edited_at` the message came with
//   (`edited_at` is the time of the edit that made it);
// - a reaction's `count` is absolute: the latest one per emoji (by offset) wins;
// - replies are counted as the set of reply offsets seen, never below the count the message
//   came with;
// - a delete is final.

import { lifecycleOf, replyTo, type Json, type Message, type ReactionCount } from "./types.js";

interface Effects {
  /** The latest edit seen; `data` absent when its content is gone (the message was deleted). */
  edit?: { offset: number; ts: string; data?: Json };
  deleted?: boolean;
  /** Per emoji: the latest reaction change seen. */
  reactions: Map<string, { offset: number; count: number }>;
  /** Per emoji: the viewer's own latest change. */
  mine: Map<string, { offset: number; on: boolean }>;
  replies: Set<number>;
}

export class MessageFold<D = Json> {
  readonly #base = new Map<number, Message<D>>();
  readonly #effects = new Map<number, Effects>();
  readonly #view = new Map<number, Message<D>>();

  /** `me`: the viewer's user id, for the `me` of reactions. */
  constructor(readonly me?: string) {}

  /**
   * Folds one message in (live, replayed or from a history page). Returns the offsets of the
   * shown messages whose view may have changed: the message itself, or the one an edit, delete,
   * reaction or reply is about (when it is known here). Edits, deletes and reactions are not
   * shown messages themselves.
   */
  add(message: Message<D>): number[] {
    const life = lifecycleOf(message);
    if (life) {
      const fx = this.#fx(life.target);
      if (life.kind === "delete") fx.deleted = true;
      else if (life.kind === "edit") {
        if (fx.edit === undefined || fx.edit.offset < message.offset) {
          fx.edit = life.data === undefined ? { offset: message.offset, ts: message.ts } : { offset: message.offset, ts: message.ts, data: life.data };
        }
      } else {
        const known = fx.reactions.get(life.emoji);
        if (known === undefined || known.offset < message.offset) fx.reactions.set(life.emoji, { offset: message.offset, count: life.count });
        if (this.me !== undefined && message.from === this.me) {
          const mine = fx.mine.get(life.emoji);
          if (mine === undefined || mine.offset < message.offset) fx.mine.set(life.emoji, { offset: message.offset, on: life.op === "add" });
        }
      }
      return this.#refresh(life.target);
    }
    // Stored as a plain message (a live one is the `message` frame itself, with its `type`).
    const { type: _frame, ...plain } = message as Message<D> & { type?: string };
    message = plain;
    const old = this.#base.get(message.offset);
    // A live message is as published; a replayed or history one may carry newer state: keep that.
    if (old === undefined || hasState(message) || !hasState(old)) this.#base.set(message.offset, message);
    const parent = replyTo(message);
    const changed = this.#refresh(message.offset);
    if (parent !== undefined) {
      const fx = this.#fx(parent);
      if (!fx.replies.has(message.offset)) {
        fx.replies.add(message.offset);
        changed.push(...this.#refresh(parent));
      }
    }
    return changed;
  }

  /** Folds in many (e.g. a history page); returns the offsets changed, ascending, once each. */
  addAll(messages: Iterable<Message<D>>): number[] {
    const changed = new Set<number>();
    for (const m of messages) for (const o of this.add(m)) changed.add(o);
    return [...changed].sort((a, b) => a - b);
  }

  /** The shown message at `offset` as it is now (not for edits, deletes and reactions). */
  get(offset: number): Message<D> | undefined {
    return this.#view.get(offset);
  }

  /** Every shown message (chat and system messages), ascending by offset. */
  messages(): Message<D>[] {
    return [...this.#view.values()].sort((a, b) => a.offset - b.offset);
  }

  #fx(target: number): Effects {
    let fx = this.#effects.get(target);
    if (!fx) {
      fx = { reactions: new Map(), mine: new Map(), replies: new Set() };
      this.#effects.set(target, fx);
    }
    return fx;
  }

  #refresh(offset: number): number[] {
    const base = this.#base.get(offset);
    if (base === undefined) return [];
    const fx = this.#effects.get(offset);
    this.#view.set(offset, fx ? apply(base, fx) : base);
    return [offset];
  }
}

/** Folds messages (in any order, repeats allowed) into the shown messages, ascending. */
export function foldMessages<D = Json>(messages: Iterable<Message<D>>, me?: string): Message<D>[] {
  const fold = new MessageFold<D>(me);
  fold.addAll(messages);
  return fold.messages();
}

function hasState(m: Message<unknown>): boolean {
  return m.edited_at !== undefined || m.deleted === true || m.replies !== undefined || m.reactions !== undefined || m.hidden === true;
}

function apply<D>(base: Message<D>, fx: Effects): Message<D> {
  const m: Message<D> = { ...base };
  const replies = Math.max(base.replies ?? 0, fx.replies.size);
  if (replies > 0) m.replies = replies;
  // A hidden message shows nothing of its content (the server leaves out edits and reactions).
  if (base.hidden) return m;
  // The edit that made the message's version, unless it came with a later one.
  const edit = fx.edit && (base.edited_at === undefined || Date.parse(fx.edit.ts) >= Date.parse(base.edited_at)) ? fx.edit : undefined;
  if (edit) m.edited_at = edit.ts;
  if (base.deleted || fx.deleted) {
    // A tombstone keeps when it was last edited (as history shows it), nothing of its content.
    m.deleted = true;
    m.data = null as D;
    delete m.reactions;
    return m;
  }
  if (edit?.data !== undefined) m.data = edit.data as D;
  if (fx.reactions.size > 0 || fx.mine.size > 0) {
    const counts = new Map<string, ReactionCount>();
    for (const r of base.reactions ?? []) counts.set(r.emoji, { ...r });
    for (const [emoji, { count }] of fx.reactions) counts.set(emoji, { emoji, count, me: counts.get(emoji)?.me ?? false });
    for (const [emoji, { on }] of fx.mine) {
      const r = counts.get(emoji);
      if (r) r.me = on;
    }
    const list = [...counts.values()].filter((r) => r.count > 0).sort(byUse);
    if (list.length > 0) m.reactions = list;
    else delete m.reactions;
  }
  return m;
}

/** As the server orders them: most used first, ties by emoji (code point order, as UTF-8 bytes). */
function byUse(a: ReactionCount, b: ReactionCount): number {
  if (a.count !== b.count) return b.count - a.count;
  const x = Array.from(a.emoji, (c) => c.codePointAt(0)!);
  const y = Array.from(b.emoji, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
