// Shared by the puppeteer-core tests: the test server and a headless Chromium.
//
// XLALIGN_TEST_SERVER (set by scripts/test-browser.sh) points at a running serve.py with
// the repository at "/" and the model folder at "/models"; without it a server is started
// here on a free port. XLALIGN_MODEL names the model file (default public/models/…).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MODEL = process.env.XLALIGN_MODEL ?? path.join(ROOT, "public/models/multilingual-e5-small-q4_0.gguf");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitFor(url, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    if (Date.now() > end) throw new Error(`server at ${url} did not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts serve.py (unless one is running already); resolves to { base, modelUrl, stop, stats }. */
export async function server({ noRange = false, fresh = false } = {}) {
  if (!existsSync(MODEL)) throw new Error(`model not found at ${MODEL}: run scripts/setup.sh or set XLALIGN_MODEL`);
  let base = fresh || noRange ? null : process.env.XLALIGN_TEST_SERVER;
  let child = null;
  if (!base) {
    const port = await freePort();
    const args = [
      path.join(ROOT, "tests/browser/serve.py"), "--port", String(port),
      "--mount", `/models=${path.dirname(MODEL)}`, "--mount", `/data=${path.join(ROOT, "tests/data")}`,
      "--mount", `/=${ROOT}`,
    ];
    if (noRange) args.push("--no-range");
    child = spawn("python3", args, { stdio: "ignore" });
    base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/__stats`, 10000);
  }
  return {
    base,
    modelUrl: `${base}/models/${path.basename(MODEL)}`,
    modelBytes: (await import("node:fs")).statSync(MODEL).size,
    async stats({ reset = false } = {}) {
      return (await fetch(`${base}/__stats${reset ? "?reset=1" : ""}`)).json();
    },
    stop() {
      child?.kill();
    },
  };
}

/**
 * Serves a built folder with scripts/serve-web.sh (the demo's server) on a free port, or on
 * `port`; resolves to { base, child, stop } once it answers, rejects if the script exits first.
 */
export async function serveWeb(dir, { port } = {}) {
  port ??= await freePort();
  const child = spawn("bash", [path.join(ROOT, "scripts/serve-web.sh"), dir], {
    env: { ...process.env, XLALIGN_PORT: String(port), XLALIGN_ADDR: "127.0.0.1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code ?? "a signal")));
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      await fetch(`${base}/`, { method: "HEAD" });
      break;
    } catch {}
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
    if (code !== undefined) throw new Error(`scripts/serve-web.sh ${dir} exited (${code}):\n${stderr}`);
  }
  return { base, child, stop: () => child.kill() };
}

/** Headless Chromium with WebGPU exposed (SwiftShader when there is no GPU). */
export async function browser() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    protocolTimeout: 900_000,
    args: [
      "--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-quic", "--enable-unsafe-webgpu",
    ],
  });
}

/** A page that fails the test on uncaught errors; console lines are kept for diagnostics. */
export async function page(b, url) {
  const p = await b.newPage();
  p.errors = [];
  p.logs = [];
  p.on("pageerror", (e) => p.errors.push(e.message));
  p.on("console", (m) => p.logs.push(`${m.type()}: ${m.text()}`));
  if (url) await p.goto(url, { waitUntil: "load" });
  return p;
}

/**
 * The test harness page with the package imported as `window.xl` and initialised; with
 * `clearCache`, the model cache starts empty.
 */
export async function harness(b, srv, { clearCache = false } = {}) {
  const p = await page(b, `${srv.base}/tests/browser/harness.html`);
  await p.evaluate(async (clear) => {
    window.xl = await import("/pkg/index.js");
    await xl.default();
    if (clear) await xl.clearCache();
  }, clearCache);
  return p;
}

function tree(root) {
  const kids = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {}
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const k of kids.get(p) ?? []) walk(k);
  };
  walk(root);
  return out;
}

// Peak resident memory (VmHWM) of each Chromium process under `root` since the last reset,
// in MiB by process type (dedicated workers are threads of the renderer): the kernel keeps
// the peak, so nothing samples (and competes for the 2 cores) while pairs run.
export function peakMemory(root) {
  const out = {};
  for (const pid of tree(root)) {
    try {
      const st = readFileSync(`/proc/${pid}/status`, "utf8");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const type = cmd.match(/--type=([a-z-]+)/)?.[1] ?? "browser";
      out[type] = (out[type] ?? 0) + Number(st.match(/^VmHWM:\s+(\d+) kB/m)[1]) / 1024;
    } catch {}
  }
  return out;
}

// Resets the peaks (`clear_refs` 5: VmHWM = current resident memory).
export function resetPeakMemory(root) {
  for (const pid of tree(root)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {}
  }
}
