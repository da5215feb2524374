// The demo's first visit on a throttled connection: seconds and model bytes until the first
// alignment is on screen, the app shell included, in headless Chromium with a cold cache.
//
// Usage: node tests/e2e/first-picture-bench.mjs [mbit] [latency ms] [rounds]
//        (defaults 10 Mbit/s, 40 ms, 1 round; `scripts/bench-browser.sh demo` builds dist/
//        first and runs this).
//
// dist/ is served by scripts/serve-web.sh (the README's demo server: brotli app shell, byte
// ranges of the model). The throttle is Chromium's own (DevTools
// Network.emulateNetworkConditions), set on the page; the page's workers (the package's
// worker fetches the model) are attached before they run, for their byte counts, and their
// requests follow the page's throttle (the run also prints the model's effective rate, to
// show it). Bytes are what the browser received for the model URL (Network.dataReceived /
// loadingFinished) until the picture.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const mbit = Number(process.argv[2] ?? 10);
const latency = Number(process.argv[3] ?? 40);
const rounds = Math.max(1, Number(process.argv[4] ?? 1));
if (!(mbit > 0) || !(latency >= 0)) throw new Error("usage: first-picture-bench.mjs [mbit > 0] [latency ms >= 0] [rounds]");

const port = await new Promise((ok) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => ok(p));
  });
});
const server = spawn("bash", [path.join(ROOT, "scripts/serve-web.sh")], {
  env: { ...process.env, XLALIGN_PORT: String(port) },
  stdio: "ignore",
});
const base = `http://127.0.0.1:${port}/`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(base)).ok) break;
  } catch {}
  if (i > 100) throw new Error("the demo server did not start");
  await new Promise((ok) => setTimeout(ok, 100));
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-quic"],
});
const conditions = { offline: false, latency, downloadThroughput: (mbit * 1e6) / 8, uploadThroughput: (mbit * 1e6) / 8 };

async function measure() {
  const ctx = await browser.createBrowserContext(); // empty HTTP cache and Cache API
  try {
    const page = await ctx.newPage();
    const urls = new Map();
    const bytes = new Map();
    const watch = async (cdp) => {
      cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, e.request.url));
      cdp.on("Network.dataReceived", (e) => bytes.set(e.requestId, (bytes.get(e.requestId) ?? 0) + e.encodedDataLength));
      cdp.on("Network.loadingFinished", (e) => bytes.set(e.requestId, Math.max(bytes.get(e.requestId) ?? 0, e.encodedDataLength)));
      await cdp.send("Network.enable");
      // A worker target refuses it ("Not supported"): its requests follow the page's.
      await cdp.send("Network.emulateNetworkConditions", conditions).catch(() => {});
    };
    // The package's worker is paused at its start until its throttle is set.
    const cdp = await page.createCDPSession();
    await watch(cdp);
    cdp.on("Target.attachedToTarget", async ({ sessionId, targetInfo, waitingForDebugger }) => {
      const worker = cdp.connection().session(sessionId);
      if (targetInfo.type === "worker" && worker) await watch(worker);
      if (waitingForDebugger && worker) await worker.send("Runtime.runIfWaitingForDebugger");
    });
    await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: true, flatten: true });
    const sum = (match) => {
      let n = 0;
      for (const [id, b] of bytes) if (match(urls.get(id) ?? "")) n += b;
      return n;
    };
    const t0 = Date.now();
    await page.goto(base, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => +document.querySelector("section.picture")?.dataset.resultId > 0 && document.querySelector("#alignment"), {
      timeout: 600_000,
      polling: 50,
    });
    const seconds = (Date.now() - t0) / 1000;
    const model = sum((u) => u.endsWith(".gguf"));
    return { seconds, model, shell: sum((u) => !u.endsWith(".gguf")), mbitNeeded: (((model + sum((u) => !u.endsWith(".gguf"))) * 8) / 1e6 / seconds).toFixed(1) };
  } finally {
    await ctx.close();
  }
}

try {
  const runs = [];
  for (let r = 0; r < rounds; r++) runs.push(await measure());
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const mb = (n) => (n / 1e6).toFixed(1);
  console.log(`demo, cold cache, ${mbit} Mbit/s, ${latency} ms: first picture after ${best.seconds.toFixed(1)} s, ${mb(best.model)} MB of the model and ${mb(best.shell)} MB of app shell received (best of ${rounds})`);
  console.log(JSON.stringify({ mbit, latency, runs }));
} finally {
  await browser.close();
  server.kill();
}
