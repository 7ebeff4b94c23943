// The bell: live when someone mentions you or follows you, a panel that lists it, and
// "mark all read". Also the home feed: follow someone and their posts arrive live.
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

const bellCount = (page) => page.getByTestId("bell").getAttribute("data-count").then(Number);
const waitBell = (page, n) =>
  page.waitForFunction((n) => document.querySelector("[data-testid=bell]")?.getAttribute("data-count") === String(n), n, {
    timeout: 10_000,
  });

test("the bell counts a mention live; the panel shows it; mark all read resets it", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("ann");
  const bobName = H.unique("ben");
  const room = H.unique("ping");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);
  await H.createRoom(alice.page, room);
  // Bob is on his home page, not in the room: a public room he may read is enough.
  assert.equal(await bellCount(bob.page), 0);
  assert.ok(await bob.page.getByTestId("bell-count").isHidden());

  // Not mentions: an e-mail address, another name, and Alice naming herself.
  await H.say(alice.page, `write to ${bobName}@example.com`);
  await H.say(alice.page, `@${aliceName} talking to myself`);
  await H.say(alice.page, `@${bobName} hello`);
  await H.waitForCount(alice.page, 3);
  await waitBell(bob.page, 1);
  assert.equal(await bob.page.getByTestId("bell-count").textContent(), "1");
  await H.sleep(1_200); // past the recount: it agrees with the server
  assert.equal(await bellCount(bob.page), 1);
  assert.equal(await bellCount(alice.page), 0, "nobody is notified of their own mention");

  await bob.page.getByTestId("bell").click();
  const item = bob.page.locator("[data-testid=notif-item][data-kind=mention]");
  await item.waitFor();
  assert.equal(await item.count(), 1);
  assert.equal(await item.getAttribute("data-read"), "false");
  assert.equal(await item.getByTestId("notif-excerpt").textContent(), `@${bobName} hello`);
  assert.match(await item.textContent(), new RegExp(`${aliceName} mentioned you in #${room}`));
  await H.screenshot(bob.page, "notifications-panel");

  // A second mention while the panel is open: listed at the top, counted.
  await H.say(alice.page, `@${bobName} are you there?`);
  await waitBell(bob.page, 2);
  await bob.page.locator("[data-testid=notif-item]").nth(1).waitFor();
  assert.equal(await bob.page.locator("[data-testid=notif-item]").first().getByTestId("notif-excerpt").textContent(), `@${bobName} are you there?`);

  await bob.page.getByTestId("notif-mark-all").click();
  await waitBell(bob.page, 0);
  assert.ok(await bob.page.getByTestId("bell-count").isHidden());
  assert.equal(await bob.page.locator("[data-testid=notif-item][data-read=false]").count(), 0);

  // Still zero after a reload (the server agrees), and the mention takes Bob to the room.
  await bob.page.reload();
  await bob.page.locator("[data-testid=conn-state][data-state=connected]").waitFor();
  await H.sleep(500);
  assert.equal(await bellCount(bob.page), 0);
  await bob.page.getByTestId("bell").click();
  await bob.page.locator("[data-testid=notif-item][data-kind=mention] button.link").first().click();
  await H.waitLive(bob.page, room);
  await H.waitForCount(bob.page, 4);
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.context.close();
  await bob.context.close();
});

test("following someone: they are notified, and their posts reach the follower's feed live", async () => {
  const alice = await H.openPerson(browser, server.url);
  const bob = await H.openPerson(browser, server.url);
  const aliceName = H.unique("fa");
  const bobName = H.unique("fb");
  await H.signUp(alice.page, aliceName);
  await H.signUp(bob.page, bobName);
  await bob.page.locator("[data-testid=feed][data-state=live]").waitFor();

  // Bob finds Alice and follows her; Alice's bell says so.
  await bob.page.getByTestId("find-user-input").fill(aliceName);
  await bob.page.getByTestId("find-user-submit").click();
  await bob.page.locator("[data-testid=profile-name]").filter({ hasText: aliceName }).waitFor();
  await bob.page.getByTestId("follow-toggle").click();
  await bob.page.locator("[data-testid=follow-toggle][data-following=true]").waitFor();
  await bob.page.locator("[data-testid=profile-followers]").filter({ hasText: "1" }).waitFor();
  await waitBell(alice.page, 1);
  await alice.page.getByTestId("bell").click();
  const follow = alice.page.locator("[data-testid=notif-item][data-kind=follow]");
  await follow.waitFor();
  assert.match(await follow.textContent(), new RegExp(`${bobName} followed you`));
  await alice.page.getByTestId("bell").click(); // close the panel

  // Alice posts; it shows in her own feed and, live, in Bob's.
  await alice.page.getByTestId("post-input").fill("first post <script>alert(1)</script>");
  await alice.page.getByTestId("post-submit").click();
  for (const { page } of [alice, bob]) {
    const post = page.locator(`[data-testid=post][data-author="${aliceName}"]`);
    await post.waitFor({ timeout: 10_000 });
    assert.equal(await post.getByTestId("post-text").textContent(), "first post <script>alert(1)</script>");
  }
  await H.screenshot(bob.page, "home-feed");

  // Unfollowed: her next post does not reach Bob's feed (but still hers).
  await bob.page.getByTestId("follow-toggle").click();
  await bob.page.locator("[data-testid=follow-toggle][data-following=false]").waitFor();
  await alice.page.getByTestId("post-input").fill("second post");
  await alice.page.getByTestId("post-submit").click();
  await alice.page.locator("[data-testid=post-text]").filter({ hasText: "second post" }).waitFor();
  await H.sleep(1_000);
  assert.equal(await bob.page.getByTestId("post").count(), 1);
  assert.equal(await alice.page.getByTestId("post").count(), 2);

  // After a reload the feed comes from GET /api/v1/feed: same posts, once each.
  await bob.page.reload();
  await bob.page.locator("[data-testid=feed][data-state=live]").waitFor();
  assert.equal(await bob.page.getByTestId("post").count(), 1);
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
  await alice.context.close();
  await bob.context.close();
});
