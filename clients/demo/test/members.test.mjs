// Room membership and typing in the demo: the owner adds and bans a member from the members
// panel, both pages show the changes as system lines, and typing shows on the other page.
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

test("the owner adds and bans a member; typing shows on the other page", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("alice");
  const bobName = H.unique("bob");
  const room = H.unique("crew");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);
  await H.createRoom(alice.page, room);
  await H.openRoomFromList(bob.page, room);

  // The owner's panel lists her as owner, with the add box; bob (not a member) has no controls.
  await alice.page.waitForSelector(`[data-testid=member][data-username="${aliceName}"][data-role=owner]`);
  assert.equal(await bob.page.getByTestId("member-add").isVisible(), false);

  // Typing (without sending) shows on bob's page, never as a message.
  await alice.page.getByTestId("chat-input").pressSequentially("hel", { delay: 30 });
  await bob.page.waitForFunction(
    (name) => document.querySelector("[data-testid=typing-indicator]")?.textContent === `${name} is typing…`,
    aliceName,
  );
  assert.equal(await bob.page.getByTestId("message").count(), 0);

  // Added from the panel: both pages get the system line, bob appears as a member.
  await alice.page.getByTestId("member-add").fill(bobName);
  await alice.page.getByTestId("member-add").press("Enter");
  for (const { page } of [alice, bob]) {
    await page.waitForSelector(`[data-testid=system-message][data-kind=member_added]`);
    await page.waitForSelector(`[data-testid=member][data-username="${bobName}"][data-role=member]`);
  }
  assert.equal(
    await bob.page.locator("[data-testid=system-message][data-kind=member_added]").textContent(),
    `${aliceName} added ${bobName}`,
  );

  // Banned: bob's page loses the room at once (its subscription ended with forbidden).
  await alice.page.locator(`[data-testid=member][data-username="${bobName}"] [data-testid=member-ban]`).click();
  await bob.page.waitForSelector("[data-testid=chat][data-state=error]");
  assert.match(await bob.page.getByTestId("chat-error").textContent(), /banned/);
  await alice.page.waitForSelector(`[data-testid=system-message][data-kind=banned]`);
  // The panel reloads the member list after the system line arrives: wait for bob to leave it.
  await alice.page.waitForSelector(`[data-testid=member][data-username="${bobName}"]`, { state: "detached" });
  await alice.context.close();
  await bob.context.close();
});
