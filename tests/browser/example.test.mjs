// Drives public/example/ (which uses only the built package in pkg/) in headless Chromium
// and checks the links it prints.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { browser, page, server } from "./lib.mjs";

let srv, b;
before(async () => {
  srv = await server();
  b = await browser();
});
after(async () => {
  await b?.close();
  srv?.stop();
});

test("the example page loads the model with progress, aligns the pair and prints the links", { timeout: 600_000 }, async () => {
  const p = await page(b);
  // Record every status line so the progress phases can be checked afterwards.
  await p.evaluateOnNewDocument(() => {
    window.__status = [];
    new MutationObserver(() => {
      const s = document.getElementById("status");
      if (s) window.__status.push(`${s.dataset.state}|${s.textContent}`);
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const url = `${srv.base}/public/example/?backend=cpu&model=${encodeURIComponent(srv.modelUrl)}`;
  await p.goto(url, { waitUntil: "load" });
  await p.waitForFunction(
    () => ["done", "error"].includes(document.getElementById("status").dataset.state),
    { timeout: 590_000, polling: 500 },
  );
  const state = await p.$eval("#status", (e) => e.dataset.state);
  const text = await p.$eval("#links", (e) => e.textContent);
  assert.equal(state, "done", `page ended in state ${state}: ${text}\n${p.logs.join("\n")}`);
  assert.deepEqual(p.errors, []);

  const links = text.split("\n").filter((l) => l.includes("↔")).map((l) => l.split("  (")[0]);
  for (const want of ["old ↔ alte", "morning ↔ Morgen", "rocky ↔ felsige", "shore ↔ Küste"]) {
    assert.ok(links.includes(want), `missing link "${want}" in:\n${text}`);
  }
  assert.match(text, /sentence cosine 0\.\d+/);
  const statuses = await p.evaluate(() => window.__status);
  assert.ok(statuses.some((s) => /^loading\|(download|cache)/.test(s)), `no progress shown: ${statuses.slice(0, 5)}`);
  assert.equal(await p.$eval("#progress", (e) => e.value), 1);
});
