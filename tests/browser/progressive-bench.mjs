// Time and bytes until the first alignment on a throttled connection (Chromium network
// emulation, default 10 Mbit/s down, 20 ms latency): full download vs progressive loading.
// Usage: node tests/browser/progressive-bench.mjs [mbit] — needs pkg/ (scripts/build-wasm.sh).
import { browser, page, server } from "./lib.mjs";

const mbit = Number(process.argv[2] ?? 10);
const srv = await server({ fresh: true });
const b = await browser();
const SRC = "The old lighthouse keeper walked along the rocky shore every morning.";
const TGT = "Der alte Leuchtturmwärter ging jeden Morgen die felsige Küste entlang.";
const NEXT = ["Ancient runes ᚠᚢᚦ and Linear B 𐀀𐀁 plus math 𝔸𝔹ℂ.", "Alte Runen ᚠᚢᚦ und Linear B 𐀀𐀁 sowie Mathematik 𝔸𝔹ℂ."];

async function measure(progressive) {
  const ctx = await b.createBrowserContext(); // empty cache and Cache API
  try {
    const p = await page(ctx);
    await p.goto(`${srv.base}/tests/browser/harness.html`);
    await p.evaluate(async () => {
      window.xl = await import("/pkg/index.js");
      await xl.default(); // the .wasm itself is not part of the measurement
    });
    const cdp = await p.createCDPSession();
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 20,
      downloadThroughput: (mbit * 1e6) / 8,
      uploadThroughput: (mbit * 1e6) / 8,
    });
    // Bytes on the wire as the browser counts them: what each finished request reports,
    // plus what cancelled ones had received when they stopped.
    const perRequest = new Map();
    cdp.on("Network.dataReceived", (e) => perRequest.set(e.requestId, (perRequest.get(e.requestId) ?? 0) + e.encodedDataLength));
    cdp.on("Network.loadingFinished", (e) => perRequest.set(e.requestId, Math.max(perRequest.get(e.requestId) ?? 0, e.encodedDataLength)));
    const received = () => [...perRequest.values()].reduce((a, x) => a + x, 0);
    await srv.stats({ reset: true });
    const r = await p.evaluate(async (url, progressive, src, tgt, next) => {
      const t0 = performance.now();
      const a = await xl.Aligner.load(url, { backend: "cpu", progressive, cache: false });
      const ready = performance.now() - t0;
      const first = await a.align(src, tgt);
      const firstAt = performance.now() - t0;
      const readyInfo = a.loading;
      const t1 = performance.now();
      await a.align(next[0], next[1]);
      const nextMs = performance.now() - t1;
      const info = a.loading;
      a.dispose();
      return { ready, firstAt, links: first.links.length, readyInfo, info, nextMs };
    }, srv.modelUrl, progressive, SRC, TGT, NEXT);
    const served = (await srv.stats()).bytes;
    return { ...r, received: received(), served };
  } finally {
    await ctx.close();
  }
}

try {
  const mb = (n) => (n / 1e6).toFixed(1);
  console.log(`throttled to ${mbit} Mbit/s, 20 ms latency; model ${mb(srv.modelBytes)} MB; cache off`);
  for (const progressive of [false, true]) {
    const r = await measure(progressive);
    console.log(
      `${progressive ? "progressive" : "full       "}  ready ${(r.ready / 1000).toFixed(1)} s, first alignment at ${(r.firstAt / 1000).toFixed(1)} s ` +
        `(${r.links} links); bytes received by then ${mb(r.readyInfo.networkBytes || r.readyInfo.readyBytes)} MB ` +
        `(browser saw ${mb(r.received)} MB in total, server sent ${mb(r.served)} MB); ` +
        `next pair with rare characters ${r.nextMs.toFixed(0)} ms` +
        (progressive ? `, ${r.info.pagesFetched} pages fetched in ${r.info.requests} requests so far` : ""),
    );
  }
} finally {
  await b.close();
  srv.stop();
}
