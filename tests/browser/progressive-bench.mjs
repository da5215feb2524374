// Time and bytes until the first alignment is shown on a throttled connection, full
// download versus progressive loading, in headless Chromium with a cold cache.
//
// Usage: node tests/browser/progressive-bench.mjs [mbit] [latency ms] [rounds] [modes]
//        (defaults 10 Mbit/s, 40 ms, 1 round, "full,progressive"; scripts/bench-browser.sh progressive builds
//        pkg/ first and runs this). Needs pkg/ (scripts/build-wasm.sh) and the model.
//
// The throttle is Chromium's own (DevTools Network.emulateNetworkConditions), applied to
// every request of the page, the package's .js and .wasm included. Each mode runs in a
// fresh browser context (empty HTTP cache and Cache API) with `cache: false`. Bytes are
// what the browser received for the model URL (Network.dataReceived / loadingFinished),
// so the part of the cancelled first request that still arrived counts too.
import { browser, page, server } from "./lib.mjs";

const mbit = Number(process.argv[2] ?? 10);
const latency = Number(process.argv[3] ?? 40);
const rounds = Math.max(1, Number(process.argv[4] ?? 1));
const modes = (process.argv[5] ?? "full,progressive").split(",");
if (!(mbit > 0) || !(latency >= 0)) throw new Error("usage: progressive-bench.mjs [mbit > 0] [latency ms >= 0] [rounds]");

// A short everyday pair (its rows are among the frequent ones fetched up front), then a
// pair with rare words: place names, Hungarian and Icelandic, whose pieces lie further
// down the frequency-ordered table.
const FIRST = ["The old lighthouse keeper walked along the rocky shore every morning.", "Der alte Leuchtturmwärter ging jeden Morgen die felsige Küste entlang."];
const SECOND = [
  "Eyjafjallajökull erupted near Hvolsvöllur; the Hungarian word for it is tűzhányó-kitörés.",
  "Az Eyjafjallajökull Hvolsvöllur közelében tört ki, izlandiul eldgos.",
];

const srv = await server({ fresh: true });
const b = await browser();

async function measure(progressive) {
  const ctx = await b.createBrowserContext(); // empty HTTP cache and Cache API
  try {
    const p = await page(ctx);
    await p.goto(`${srv.base}/tests/browser/harness.html`);
    const cdp = await p.createCDPSession();
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency,
      downloadThroughput: (mbit * 1e6) / 8,
      uploadThroughput: (mbit * 1e6) / 8,
    });
    const urls = new Map();
    const perRequest = new Map();
    const log = new Map(); // requestId → { range, bytes, end } for the JSON detail
    cdp.on("Network.requestWillBeSent", (e) => {
      urls.set(e.requestId, e.request.url);
      if (e.request.url === srv.modelUrl) log.set(e.requestId, { range: e.request.headers.Range ?? e.request.headers.range ?? null });
    });
    cdp.on("Network.loadingFailed", (e) => log.has(e.requestId) && (log.get(e.requestId).end = e.canceled ? "cancelled" : e.errorText));
    cdp.on("Network.dataReceived", (e) => perRequest.set(e.requestId, (perRequest.get(e.requestId) ?? 0) + e.encodedDataLength));
    // encodedDataLength here is the request's total (headers included), which the chunks
    // above may not add up to when Chromium reports them as 0.
    cdp.on("Network.loadingFinished", (e) => perRequest.set(e.requestId, Math.max(perRequest.get(e.requestId) ?? 0, e.encodedDataLength)));
    const modelBytes = () => {
      let n = 0;
      for (const [id, bytes] of perRequest) if (urls.get(id) === srv.modelUrl) n += bytes;
      return n;
    };
    const requests = () => [...urls.values()].filter((u) => u === srv.modelUrl).length;

    const pkg = await p.evaluate(async () => {
      const t0 = performance.now();
      window.xl = await import("/pkg/index.js");
      await xl.default();
      return performance.now() - t0;
    });
    await srv.stats({ reset: true });
    const first = await p.evaluate(
      async (url, progressive, [src, tgt]) => {
        const t0 = performance.now();
        // When each loading phase began (and the last download report), for the breakdown.
        const phases = {};
        const onProgress = ({ phase }) => {
          const t = performance.now() - t0;
          phases[phase] ??= t;
          if (phase === "download") phases.downloadEnd = t;
        };
        window.aligner = await xl.Aligner.load(url, { backend: "cpu", progressive, cache: false, onProgress });
        const ready = performance.now() - t0;
        const r = await aligner.align(src, tgt);
        // "Shown": the links are in the page once the result has been rendered.
        document.body.textContent = r.links.map((l) => `${r.srcWords[l.src].text}–${r.tgtWords[l.tgt].text}`).join(" ");
        await new Promise(requestAnimationFrame);
        return { ready, shown: performance.now() - t0, links: r.links.length, info: aligner.loading, phases };
      },
      srv.modelUrl,
      progressive,
      FIRST,
    );
    const firstBytes = modelBytes();
    const firstRequests = requests();
    const second = await p.evaluate(async ([src, tgt]) => {
      const t0 = performance.now();
      const r = await aligner.align(src, tgt);
      const ms = performance.now() - t0;
      const info = aligner.loading;
      const maxId = Math.max(...aligner.tokenize(src).ids, ...aligner.tokenize(tgt).ids);
      aligner.dispose();
      return { ms, links: r.links.length, info, maxId };
    }, SECOND);
    const served = (await srv.stats()).bytes;
    if (p.errors.length) throw new Error(`page errors: ${p.errors.join("; ")}`);
    return {
      mode: progressive ? "progressive" : "full",
      packageMs: pkg,
      readyMs: first.ready,
      phases: first.phases,
      firstShownMs: first.shown,
      firstLinks: first.links,
      firstBytes,
      firstRequests,
      firstPages: first.info.pagesFetched,
      readyBytes: first.info.readyBytes,
      secondMs: second.ms,
      secondLinks: second.links,
      secondBytes: modelBytes() - firstBytes,
      secondRequests: requests() - firstRequests,
      secondPages: second.info.pagesFetched - first.info.pagesFetched,
      secondMaxId: second.maxId,
      rowsPresent: second.info.rowsPresent,
      rowsTotal: second.info.rowsTotal,
      serverSent: served,
      requestLog: [...log].map(([id, r]) => ({ ...r, bytes: perRequest.get(id) ?? 0 })),
    };
  } finally {
    await ctx.close();
  }
}

try {
  const mb = (n) => (n / 1e6).toFixed(1);
  const s = (ms) => (ms / 1000).toFixed(1);
  console.log(`# ${mbit} Mbit/s, ${latency} ms latency (Chromium network emulation), cold cache; model ${mb(srv.modelBytes)} MB`);
  const all = [];
  for (let i = 0; i < rounds; i++) for (const m of modes) all.push(await measure(m === "progressive"));
  // Best of the rounds by time to the first alignment, per mode.
  const best = modes.map((m) =>
    all.filter((r) => r.mode === m).reduce((a, r) => (r.firstShownMs < a.firstShownMs ? r : a)),
  );
  console.log("");
  console.log("| loading | model bytes until the first alignment | model ready | first alignment shown | second pair (rare words): bytes, time |");
  console.log("|---|---:|---:|---:|---:|");
  for (const r of best) {
    const req = r.firstRequests === 1 ? "1 request" : `${r.firstRequests} requests`;
    const second = r.secondBytes > 0 ? `${mb(r.secondBytes)} MB in ${r.secondRequests} requests (${r.secondPages} pages), ${s(r.secondMs)} s` : `0 MB, ${s(r.secondMs)} s`;
    console.log(`| ${r.mode} | ${mb(r.firstBytes)} MB (${req}) | ${s(r.readyMs)} s | ${s(r.firstShownMs)} s | ${second} |`);
  }
  console.log("");
  for (const r of best) {
    const ph = r.phases;
    if (ph.downloadEnd != null && ph.parse != null) {
      console.log(`${r.mode}: last model bytes at ${s(ph.downloadEnd)} s, then parse and backend until ready ${s(r.readyMs - ph.downloadEnd)} s, first alignment ${s(r.firstShownMs - r.readyMs)} s`);
    }
  }
  console.log(`package (.js + .wasm, uncompressed, same for both): ${s(best[0].packageMs)} s; times count from Aligner.load.`);
  console.log(JSON.stringify({ mbit, latency, modelBytes: srv.modelBytes, runs: all }));
} finally {
  await b.close();
  srv.stop();
}
