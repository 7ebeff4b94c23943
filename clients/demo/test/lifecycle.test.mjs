// Message lifecycle in the demo: an edit, a reaction, a reply and a delete made on one page show
// on the other page folded into the message (never as lines of their own), and come back the
// same from history after a reload. Then direct messages and blocks: a DM opened from the
// members panel, made read-only by a block.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as H from "./harness.mjs";

let server;
let browser;
before(async () => {
  server = await H.startServer();
  browser = await H.launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

const row = (offset) => `[data-testid=message][data-offset="${offset}"]`;

/** Waits until the message at `offset` shows `text` (and, with `edited`, the edited marker). */
async function waitText(page, offset, text, { edited = false } = {}) {
  await page.waitForFunction(
    ([sel, text, edited]) => {
      const el = document.querySelector(sel);
      if (!el || el.querySelector("[data-testid=message-text]")?.textContent !== text) return false;
      return !edited || el.querySelector("[data-testid=message-edited]") !== null;
    },
    [row(offset), text, edited],
  );
}

test("edit, react, reply and delete: both pages fold them into the message, and a reload shows the same", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("alice");
  const bobName = H.unique("bob");
  const room = H.unique("life");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);
  await H.createRoom(alice.page, room);
  await H.openRoomFromList(bob.page, room);

  await H.say(alice.page, "first version");
  await H.waitForCount(bob.page, 1);
  const offset = Number(await alice.page.locator("[data-testid=message]").first().getAttribute("data-offset"));
  await waitText(bob.page, offset, "first version");
  assert.equal(await bob.page.locator(`${row(offset)} [data-testid=message-edit]`).count(), 0, "only the author may edit");
  assert.equal(await bob.page.locator(`${row(offset)} [data-testid=message-delete]`).isVisible(), false, "bob is no moderator");

  // Alice edits: bob's page shows the new text and the marker.
  await alice.page.locator(`${row(offset)} [data-testid=message-edit]`).click();
  await alice.page.locator(`${row(offset)} [data-testid=edit-input]`).fill("second version");
  await alice.page.locator(`${row(offset)} [data-testid=edit-input]`).press("Enter");
  for (const { page } of [alice, bob]) await waitText(page, offset, "second version", { edited: true });

  // Bob reacts: alice sees a count of 1 (not hers), bob his own.
  await bob.page.locator(`${row(offset)} [data-testid=react-add][data-emoji="👍"]`).click();
  await alice.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="1"][data-me=false]`);
  await bob.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="1"][data-me=true]`);
  // Alice adds hers by the chip: 2.
  await alice.page.locator(`${row(offset)} [data-testid=reaction][data-emoji="👍"]`).click();
  await bob.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="2"][data-me=true]`);
  await alice.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="2"][data-me=true]`);
  // ...and takes it back: 1 again.
  await alice.page.locator(`${row(offset)} [data-testid=reaction][data-emoji="👍"]`).click();
  await alice.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="1"][data-me=false]`);
  await bob.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="1"][data-me=true]`);

  // Bob replies: the reply says what it answers, the parent counts it.
  await bob.page.locator(`${row(offset)} [data-testid=message-reply]`).click();
  await bob.page.waitForSelector("[data-testid=reply-bar]:not([hidden])");
  await H.say(bob.page, "a reply");
  for (const { page } of [alice, bob]) {
    await page.waitForSelector(`[data-testid=message] [data-testid=message-reply-to][data-reply-to="${offset}"]`);
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "1 reply", `${row(offset)} [data-testid=message-replies]`);
  }
  await bob.page.waitForSelector("[data-testid=reply-bar][hidden]", { state: "attached" });

  // The edits and reactions were folded in: two chat lines, nothing else.
  for (const { page } of [alice, bob]) {
    await H.sleep(200);
    assert.deepEqual((await H.shownMessages(page)).map((m) => m.text), ["second version", "a reply"]);
  }
  // The owner may delete anyone's message: her page offers it on bob's reply.
  const replyOffset = (await H.shownMessages(alice.page)).find((m) => m.text === "a reply").offset;
  assert.ok(await alice.page.locator(`${row(replyOffset)} [data-testid=message-delete]`).isVisible());

  // A reload: the same state, from history.
  await bob.page.reload();
  await H.waitLive(bob.page, room);
  await waitText(bob.page, offset, "second version", { edited: true });
  await bob.page.waitForSelector(`${row(offset)} [data-testid=reaction][data-emoji="👍"][data-count="1"][data-me=true]`);
  await bob.page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "1 reply", `${row(offset)} [data-testid=message-replies]`);
  assert.equal(await bob.page.getByTestId("message").count(), 2);

  // Alice deletes hers: both pages show the tombstone, without the reactions.
  await alice.page.locator(`${row(offset)} [data-testid=message-delete]`).click();
  for (const { page } of [alice, bob]) {
    await page.waitForSelector(`${row(offset)}[data-deleted]`);
    await waitText(page, offset, "message deleted");
    assert.equal(await page.locator(`${row(offset)} [data-testid=reaction]`).count(), 0);
    assert.equal(await page.locator(`${row(offset)} [data-testid=message-edited]`).count(), 0);
  }
  // The reply stays, and says its parent is gone.
  await bob.page.waitForFunction(
    (sel) => document.querySelector(sel)?.textContent?.includes("message deleted"),
    `${row(replyOffset)} [data-testid=message-reply-to]`,
  );
  for (const { page } of [alice, bob]) {
    await page.reload();
    await H.waitLive(page, room);
    await waitText(page, offset, "message deleted");
    await waitText(page, replyOffset, "a reply");
    assert.equal(await page.getByTestId("message").count(), 2);
  }
  await H.screenshot(bob.page, "lifecycle");
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.context.close();
  await bob.context.close();
});

test("a direct message opened from the members panel; a block makes it read-only and hides the blocked user", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("alice");
  const bobName = H.unique("bob");
  const room = H.unique("meet");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);
  await H.createRoom(alice.page, room);
  await H.openRoomFromList(bob.page, room);

  // Bob opens the DM from the members panel of the room they share.
  await bob.page.locator(`[data-testid=member][data-username="${aliceName}"] [data-testid=member-dm]`).click();
  await bob.page.waitForSelector("[data-testid=chat][data-room^='dm.'][data-state=live]");
  const dm = await bob.page.getByTestId("chat").getAttribute("data-room");
  await bob.page.waitForFunction((name) => document.querySelector("[data-testid=chat-title]")?.textContent === `Direct message with ${name}`, aliceName);
  await H.say(bob.page, "hi alice");
  await H.waitForCount(bob.page, 1);

  // Alice opens the same conversation from bob's profile.
  await alice.page.getByTestId("find-user-input").fill(bobName);
  await alice.page.getByTestId("find-user-submit").click();
  await alice.page.getByTestId("profile-dm").click();
  await H.waitLive(alice.page, dm);
  await waitText(alice.page, Number(await bob.page.locator("[data-testid=message]").first().getAttribute("data-offset")), "hi alice");

  // She blocks him from the DM's members panel: his next message is refused on his page.
  const block = alice.page.locator(`[data-testid=member][data-username="${bobName}"] [data-testid=member-block]`);
  await alice.page.waitForSelector(`[data-testid=member][data-username="${bobName}"] [data-testid=member-block][data-blocked=false]`);
  await block.click();
  await alice.page.waitForSelector(`[data-testid=member][data-username="${bobName}"] [data-testid=member-block][data-blocked=true]`);
  await H.say(bob.page, "are you there?");
  await bob.page.waitForFunction(() => {
    const el = document.querySelector("[data-testid=chat-error]");
    return el && !el.hidden && /Not sent/.test(el.textContent ?? "");
  });
  assert.equal(await bob.page.getByTestId("message").count(), 1, "nothing was stored");

  // After a reload alice sees bob's message hidden.
  await alice.page.reload();
  await H.waitLive(alice.page, dm);
  await alice.page.waitForFunction(
    () => document.querySelector("[data-testid=message][data-hidden] [data-testid=message-text]")?.textContent === "hidden (blocked user)",
  );

  // Unblocked (the profile's button says so too), the conversation works again.
  await alice.page.locator(`[data-testid=member][data-username="${bobName}"] [data-testid=member-block][data-blocked=true]`).click();
  await alice.page.waitForSelector(`[data-testid=member][data-username="${bobName}"] [data-testid=member-block][data-blocked=false]`);
  await H.say(bob.page, "back again");
  await H.waitForCount(alice.page, 2);
  await alice.page.waitForFunction(() => [...document.querySelectorAll("[data-testid=message-text]")].some((el) => el.textContent === "back again"));
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(
    bob.problems.filter((p) => !/403|Forbidden/i.test(p)),
    [],
    "the refused publish is the only problem on bob's page",
  );
  await alice.context.close();
  await bob.context.close();
});
