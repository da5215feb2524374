//! What progressive loading fetches after the aligner is ready (see [`crate::progressive`]):
//! the deeper transformer blocks, then, with the cache on, the rest of the word-embedding
//! table, so that a second visit and offline use need no network.
//!
//! One background task per aligner ([`start`]), begun when loading resolves. It gives way
//! to the calls the page makes: it starts after the first call has ended, or when someone
//! waits for the whole model, or after a short idle time ([`first_call_or_idle`]), so the
//! first alignment's rows and encoder pass have the link to themselves; and before
//! each request it waits until no on-demand page fetch is in flight and no backend call is
//! running, so a text's rows are always served first, the first alignment's bytes are its
//! own, and a slow encoder (WebGPU on a software adapter, say) does not share the link
//! with the background while the page waits for its result. A call that waits for a block
//! fetches it itself (below), so giving way never deadlocks. Blocks come one Range
//! request each, in order, and are added to the running backend as each arrives; a call
//! that needs a block not yet present ([`Store::ensure_blocks`]) waits for it, or fetches
//! it itself if the task is not at it (after a network error, say). The table's remaining
//! rows follow in ranges of about [`FILL_BYTES`], one at a time, requested with `priority:
//! "low"`, kept in the Cache API and written into the backend. The task stops when the
//! aligner is disposed.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use bytes::Bytes;

use crate::aligner::sleep_ms;
use crate::cache;
use crate::error::{Result, WasmError};
use crate::fetch::Priority;
use crate::progressive::{cached, fetch_range, remember, Ranged, Store};

/// Bytes per background request for table rows: large enough that latency costs little
/// (1.5 MB is 1.2 s at 10 Mbit/s against 40 ms of latency), small enough that an
/// on-demand page never queues for long behind one on a slow link.
pub const FILL_BYTES: usize = 1_500_000;

/// Wakes every task waiting for a change (pages, a block, or the end of a fetch).
#[derive(Default)]
pub struct Changed {
    generation: Cell<u64>,
    waiting: RefCell<Vec<Waker>>,
}

impl Changed {
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.waiting.take() {
            w.wake();
        }
    }

    /// Resolves at the next [`Changed::notify`].
    pub async fn wait(&self) {
        let seen = self.generation.get();
        poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(())
            } else {
                self.waiting.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Store {
    /// Waits until the backend has the blocks that layer `layer` needs (`0..layer`),
    /// fetching the next missing block itself when no fetch of one is under way.
    pub async fn ensure_blocks(&self, layer: usize) -> Result<()> {
        let needed = layer.min(self.layers_total());
        loop {
            let present = self.blocks_present();
            if present >= needed {
                return Ok(());
            }
            if self.fetching_block.get() {
                self.changed.wait().await;
                continue;
            }
            self.fetching_block.set(true);
            let r = self.fetch_block(present).await;
            self.fetching_block.set(false);
            self.changed.notify();
            r?;
        }
    }

    /// Block `i` from the cache, or one Range request (kept in the cache), added to the
    /// running backend.
    async fn fetch_block(&self, i: usize) -> Result<()> {
        let r = self.layout.blocks[i].clone();
        let key = cache::part_key(
            &self.url,
            &format!("block-{i}-{}-{}-of-{}", r.start, r.end, self.total),
        );
        let hit = cached(&key, self.cache)
            .await
            .filter(|e| e.data.length() as usize == r.len() && e.version == self.version);
        let bytes = match hit {
            Some(e) => e.data.to_vec(),
            None => {
                let got = fetch_range(
                    &self.url,
                    r.start,
                    r.end,
                    self.version.as_deref(),
                    self.total,
                    Priority::Auto,
                )
                .await;
                match self.count(got)? {
                    Ranged::Part(b) => {
                        remember(&key, &b, self.cache, self.version.as_deref()).await;
                        b
                    }
                    Ranged::Whole(file) => return self.take_whole(file),
                }
            }
        };
        if self.blocks_present() != i {
            // Added meanwhile (the whole file arrived for another request).
            return Ok(());
        }
        let block = self.read_block(i, r.start, Bytes::from(bytes))?;
        self.add_block(i, &block)
    }

    /// Counts a request and the bytes it brought.
    fn count(&self, got: Result<Ranged>) -> Result<Ranged> {
        let mut st = self.stats.borrow_mut();
        st.requests += 1;
        let r = got?;
        st.network_bytes += match &r {
            Ranged::Part(b) | Ranged::Whole(b) => b.len() as u64,
        };
        Ok(r)
    }

    /// Pages per background range, a whole number of pages.
    fn fill_pages(&self) -> usize {
        let page_bytes = self.page_rows * self.layout.table.row_bytes;
        (FILL_BYTES / page_bytes.max(1)).max(1)
    }

    fn fill_key(&self, chunk: usize) -> String {
        cache::part_key(
            &self.url,
            &format!(
                "fill-{}x{}-{chunk}-of-{}",
                self.page_rows,
                self.fill_pages(),
                self.total
            ),
        )
    }

    /// Pages `first..end` of background range `chunk`.
    fn chunk_pages(&self, chunk: usize) -> (usize, usize) {
        let n = self.present.borrow().len();
        let first = chunk * self.fill_pages();
        (first, (first + self.fill_pages()).min(n))
    }

    /// Writes the absent pages of range `chunk`, whose bytes are `bytes`.
    fn apply_chunk(&self, chunk: usize, bytes: &[u8]) -> Result<()> {
        let (first, end) = self.chunk_pages(chunk);
        let page_bytes = self.page_rows * self.layout.table.row_bytes;
        let mut writes = Vec::new();
        {
            let present = self.present.borrow();
            let mut p = first;
            while p < end {
                if present[p] {
                    p += 1;
                    continue;
                }
                let mut q = p;
                while q < end && !present[q] {
                    q += 1;
                }
                let a = (p - first) * page_bytes;
                let b = ((q - first) * page_bytes).min(bytes.len());
                writes.push((p, &bytes[a..b]));
                p = q;
            }
        }
        self.apply(&writes)
    }

    /// Background range `chunk`: from the cache, or one low-priority Range request (kept in
    /// the cache), written into the backend.
    async fn fill_chunk(&self, chunk: usize) -> Result<()> {
        let (first, end) = self.chunk_pages(chunk);
        let (start, stop) = self.page_range(first, end - 1);
        let key = self.fill_key(chunk);
        if let Some(e) = cached(&key, self.cache).await {
            if e.data.length() as usize == stop - start && e.version == self.version {
                return self.apply_chunk(chunk, &e.data.to_vec());
            }
        }
        let got = fetch_range(
            &self.url,
            start,
            stop,
            self.version.as_deref(),
            self.total,
            Priority::Low,
        )
        .await;
        match self.count(got)? {
            Ranged::Part(b) => {
                remember(&key, &b, self.cache, self.version.as_deref()).await;
                self.apply_chunk(chunk, &b)
            }
            Ranged::Whole(file) => self.take_whole(file),
        }
    }

    fn chunk_complete(&self, chunk: usize) -> bool {
        let (first, end) = self.chunk_pages(chunk);
        self.present.borrow()[first..end].iter().all(|&p| p)
    }

    /// Waits until no on-demand page fetch is in flight and no backend call is running.
    async fn calls_idle(&self) {
        while self.updating.get() || self.busy.get() > 0 {
            self.changed.wait().await;
        }
    }
}

/// How long the background waits for a first call after loading before it starts anyway,
/// unless the load options say otherwise (`idleStartMs`).
pub const IDLE_START_MS: i32 = 1500;

/// Waits until the first backend call after loading has ended (its rows and encoder pass had
/// the link to themselves: a page that aligns a text as soon as the model is ready asks only
/// after a round trip to its worker, by which time a block request would already be under
/// way), someone waits for the whole model, or the store's idle time has passed without a
/// call (none: no such limit; `createAligner` keeps that time on the page's thread).
async fn first_call_or_idle(s: &Store) {
    let mut idle = std::pin::pin!(async {
        match s.idle_start_ms {
            Some(ms) => sleep_ms(ms).await,
            None => std::future::pending::<()>().await,
        }
    });
    while s.calls_ended.get() == 0 && !s.wanted.get() {
        let changed = std::pin::pin!(s.changed.wait());
        if let futures_util::future::Either::Right(_) =
            futures_util::future::select(changed, idle.as_mut()).await
        {
            return;
        }
    }
}

/// Starts the background task of `store` (see the module documentation).
pub fn start(store: &Rc<Store>) {
    let weak = Rc::downgrade(store);
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = run(weak.clone()).await {
            // A call that needs a block fetches it itself, and rows stay on demand; only
            // `whenStored()` waits on the task, and it learns why it stopped.
            web_sys::console::warn_1(
                &format!("xlalign: background loading stopped: {}", e.message).into(),
            );
            if let Some(s) = weak.upgrade() {
                *s.stopped.borrow_mut() = Some(e.message);
                s.changed.notify();
            }
        }
    });
}

async fn run(weak: Weak<Store>) -> Result<()> {
    if let Some(s) = weak.upgrade() {
        first_call_or_idle(&s).await;
    }
    let alive = || weak.upgrade().ok_or_else(|| WasmError::network("disposed"));
    // The deeper blocks, one at a time.
    loop {
        let Ok(s) = alive() else { return Ok(()) };
        let next = s.blocks_present() + 1;
        if next > s.layers_total() {
            break;
        }
        s.calls_idle().await;
        s.ensure_blocks(next).await?;
    }
    // The rest of the table, for the cache (without it, rows stay on demand).
    let Ok(s) = alive() else { return Ok(()) };
    if !s.cache {
        return Ok(());
    }
    let chunks = s.present.borrow().len().div_ceil(s.fill_pages());
    drop(s);
    for chunk in 0..chunks {
        let Ok(s) = alive() else { return Ok(()) };
        if s.chunk_complete(chunk) {
            continue;
        }
        s.calls_idle().await;
        s.fill_chunk(chunk).await?;
    }
    Ok(())
}

/// Writes the rows kept in the cache by earlier visits (on-demand pages and background
/// ranges) into the model's table, one entry at a time; before the backend exists.
pub async fn restore_rows(store: &Store) {
    let Some(keys) = cache::keys().await else {
        return;
    };
    let pages = cache::part_key(&store.url, &format!("rows-{}-", store.page_rows));
    let fills = cache::part_key(
        &store.url,
        &format!("fill-{}x{}-", store.page_rows, store.fill_pages()),
    );
    let suffix = format!("-of-{}", store.total);
    let number = |k: &str, prefix: &str| {
        k.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(&suffix))
            .and_then(|p| p.parse::<usize>().ok())
    };
    let mut from_cache = 0;
    for k in keys {
        if let Some(chunk) = number(&k, &fills) {
            if chunk * store.fill_pages() >= store.present.borrow().len()
                || store.chunk_complete(chunk)
            {
                continue;
            }
            let (first, end) = store.chunk_pages(chunk);
            let (start, stop) = store.page_range(first, end - 1);
            if let Some(e) = cache::lookup(&k).await {
                if e.data.length() as usize == stop - start
                    && e.version == store.version
                    && store.apply_chunk(chunk, &e.data.to_vec()).is_ok()
                {
                    from_cache += end - first;
                }
            }
        } else if let Some(page) = number(&k, &pages) {
            if page >= store.present.borrow().len() || store.present.borrow()[page] {
                continue;
            }
            let (start, end) = store.page_range(page, page);
            if let Some(e) = cache::lookup(&k).await {
                if e.data.length() as usize == end - start
                    && e.version == store.version
                    && store.apply(&[(page, &e.data.to_vec())]).is_ok()
                {
                    from_cache += 1;
                }
            }
        }
    }
    store.stats.borrow_mut().pages_from_cache += from_cache;
}
