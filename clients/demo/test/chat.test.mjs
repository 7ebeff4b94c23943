// Two people (two browser contexts) chat in one room of the demo.
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

test("two users see each other's messages live, in order, once each", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("alice");
  const bobName = H.unique("bob");
  const room = H.unique("talk");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);

  await H.createRoom(alice.page, room);
  await H.openRoomFromList(bob.page, room);

  // Both are online in the room, each seen by the other (join events and the presence request).
  for (const { page } of [alice, bob]) {
    await page.waitForFunction(
      (names) => names.every((n) => document.querySelector(`[data-testid=presence-user][data-username="${n}"]`)),
      [aliceName, bobName],
    );
    assert.equal(await page.getByTestId("presence-user").count(), 2);
  }

  // Both type at the same time: each page must end with the same gapless sequence.
  const N = 8;
  const typing = async (page, who) => {
    for (let i = 0; i < N; i++) await H.say(page, `${who} ${i}`);
  };
  await Promise.all([typing(alice.page, "alice"), typing(bob.page, "bob")]);
  await H.waitForCount(alice.page, 2 * N);
  await H.waitForCount(bob.page, 2 * N);
  await H.sleep(500); // anything that would arrive twice has had time to
  const seenByAlice = await H.shownMessages(alice.page);
  const seenByBob = await H.shownMessages(bob.page);
  H.assertExactlyOnceInOrder(assert, seenByAlice, { count: 2 * N });
  assert.deepEqual(seenByBob, seenByAlice, "both pages show the same messages in the same order");
  for (const who of ["alice", "bob"]) {
    const mine = seenByAlice.filter((m) => m.text.startsWith(`${who} `)).map((m) => m.text);
    assert.deepEqual(mine, [...Array(N).keys()].map((i) => `${who} ${i}`), `${who}'s messages keep their order`);
  }
  const aliceId = seenByAlice.find((m) => m.text === "alice 0").from;
  assert.ok(seenByAlice.filter((m) => m.text.startsWith("alice ")).every((m) => m.from === aliceId));

  // Hostile input is normal input: shown as text, never as markup.
  const hostile = `<img src=x onerror="document.body.dataset.pwned=1"><b>bold</b> & "quotes"`;
  await H.say(bob.page, hostile);
  await H.waitForCount(alice.page, 2 * N + 1);
  const last = (await H.shownMessages(alice.page)).at(-1);
  assert.equal(last.text, hostile);
  assert.equal(await alice.page.locator("[data-testid=messages] img, [data-testid=messages] b").count(), 0);
  assert.equal(await alice.page.evaluate(() => document.body.dataset.pwned), undefined);

  // Names are shown for senders, resolved from ids.
  await alice.page.waitForFunction(
    (name) => [...document.querySelectorAll("[data-testid=message] [data-testid=user-link]")].some((el) => el.textContent === name),
    bobName,
  );

  await H.screenshot(alice.page, "chat-two-users");
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);

  // Bob leaves (his page closes): Alice's presence list drops him.
  await bob.context.close();
  await alice.page.locator(`[data-testid=presence-user][data-username="${bobName}"]`).waitFor({ state: "detached", timeout: 10_000 });
  assert.equal(await alice.page.getByTestId("presence-user").count(), 1);
  await alice.context.close();
});

test("a private room is readable by its members only", async () => {
  const owner = await H.openPerson(browser, server.url);
  const outsider = await H.openPerson(browser, server.url);
  const ownerName = H.unique("own");
  const outsiderName = H.unique("out");
  const room = H.unique("secret");
  await H.signUp(owner.page, ownerName);
  await H.signUp(outsider.page, outsiderName);
  await H.createRoom(owner.page, room, { private: true, members: [] });
  await H.say(owner.page, "for members only");
  await H.waitForCount(owner.page, 1);

  // Not listed for the outsider, and refused when opened by name.
  await outsider.page.getByTestId("rooms-refresh").click();
  await H.sleep(300);
  assert.equal(await outsider.page.locator(`[data-testid=room-link][data-room="${room}"]`).count(), 0);
  await outsider.page.getByTestId("room-name").fill(room);
  await outsider.page.getByTestId("room-open").click();
  await outsider.page.locator(`[data-testid=chat][data-room="${room}"][data-state=error]`).waitFor();
  assert.match(await outsider.page.getByTestId("chat-error").textContent(), /cannot read/);
  assert.equal(await outsider.page.getByTestId("message").count(), 0);
  assert.ok(await outsider.page.getByTestId("chat-input").isDisabled());
  await owner.context.close();
  await outsider.context.close();
});
