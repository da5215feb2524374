// Service worker: keeps the app shell (page, worker, styles) so the page opens and aligns
// offline once it has been loaded.
//
// The model is not stored here: the model worker already keeps it in the Cache API
// ("xlalign-models-v1", checked by size and SHA-256, revalidated with a HEAD request), so
// requests under models/ pass straight through.
//
// BUILD and SHELL are filled in by web/sw_stamp.py (called by web/assemble.py): BUILD is a hash
// of the built files, so every new build has a new cache, and the old one is deleted when
// the new worker activates. Left unstamped (a build that skipped it), nothing is cached.
const BUILD = "__XLALIGN_BUILD__";
const SHELL = [/*__XLALIGN_SHELL__*/];

// The package carries two builds of its .wasm and the worker downloads one (pkg/variant.js):
// the install keeps the one this browser's worker picks by default; the other is kept only
// if a page forces it (network first, below, stores any shell file it serves).
// A copy of pkg/variant.js's RELAXED_PROBE (scripts/build-web.sh checks they agree).
// prettier-ignore
const RELAXED_PROBE = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 1, 253, 15, 65, 2, 253, 15, 65, 3, 253, 17, 253, 147, 2, 11];
const WASM = { simd128: "pkg/xlalign_wasm_bg.wasm", relaxed: "pkg/xlalign_wasm_bg.relaxed.wasm" };

function relaxedSimd() {
    try {
        return WebAssembly.validate(new Uint8Array(RELAXED_PROBE));
    } catch {
        return false;
    }
}

/** The shell less the .wasm build this browser does not use by default. */
function installShell() {
    const unused = SHELL.includes(WASM.relaxed) && relaxedSimd() ? WASM.simd128 : WASM.relaxed;
    return SHELL.filter((p) => p !== unused).map((p) => new URL(p, self.location).href);
}

const PREFIX = "xlalign-app-";
const CACHE = PREFIX + BUILD;
const STAMPED = !BUILD.startsWith("__");
// The page itself, whatever its query string (shared links carry the pair in it).
const PAGE = new URL("./", self.location).href;
const SHELL_URLS = new Set(SHELL.map((p) => new URL(p, self.location).href));

self.addEventListener("install", (event) => {
    if (!STAMPED) return;
    event.waitUntil(
        caches
            .open(CACHE)
            .then((c) => c.addAll([PAGE, ...installShell()]))
            // The new shell is complete: take over at once instead of after every tab closes.
            .then(() => self.skipWaiting()),
    );
});

self.addEventListener("activate", (event) => {
    event.waitUntil(
        caches
            .keys()
            .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
            .then(() => self.clients.claim()),
    );
});

// Network first, cache second: online, the page, its wasm and the worker always come from
// the same (newest) build, so a page never talks to a worker of another build (the worker's
// files are not content-hashed); offline, the last complete build answers.
async function networkFirst(request, key) {
    const cache = await caches.open(CACHE);
    try {
        const response = await fetch(request);
        if (response.ok && response.type === "basic") await cache.put(key, response.clone());
        return response;
    } catch (err) {
        const hit = await cache.match(key, { ignoreSearch: true });
        if (hit) return hit;
        throw err;
    }
}

self.addEventListener("fetch", (event) => {
    const request = event.request;
    if (!STAMPED || request.method !== "GET") return;
    const url = new URL(request.url);
    if (url.origin !== self.location.origin) return;
    if (request.mode === "navigate") {
        // Any address inside the app opens the app (the query string is read by the page).
        if (url.pathname === new URL(PAGE).pathname || url.pathname.endsWith("/index.html")) {
            event.respondWith(networkFirst(request, PAGE));
        }
        return;
    }
    // Only the shell; anything else (the model, other pages) goes to the network untouched.
    url.search = "";
    if (SHELL_URLS.has(url.href)) event.respondWith(networkFirst(request, url.href));
});
