//! Progressive loading: the aligner is ready once what the first alignment needs has
//! arrived — the file header (with the tokenizer), the position table, the embedding norm
//! and token types, the transformer blocks up to the model's recommended alignment layer,
//! and the first rows of the word-embedding table. Everything else arrives afterwards:
//! - rows of the table a text needs come first, on demand, in small pages fetched with HTTP
//!   Range requests the first time an encoder call needs them (and kept in the Cache API);
//! - the deeper blocks (the sentence cosine pools the last layer) stream in right after
//!   ready, one Range request per block, each added to the running backend as it arrives
//!   ([`fill`]);
//! - with the cache on, the rest of the table then fills the cache in the background, at
//!   low priority and pausing while on-demand pages are in flight, so that a second visit
//!   and offline use need no network.
//!
//! For multilingual-e5-small (68.6 MB: a 1.60 MB header, most of it the tokenizer's zstd
//! frame, a 54 MB table of 216-byte rows, 0.8 MB of position table and norms, 12 blocks of
//! 1.02 MB, alignment layer 7) that is 9.50 MB plus the prefetched rows and the pages of the
//! first text's rows.
//!
//! **Prefetch and page size.** Piece ids follow the tokenizer's scores only loosely, so the
//! rows of ordinary text lie all over the table: over the 272 sentence pairs of
//! `tests/data/gold` (en–fr, ja–en, ro–en, zh–en) and `tests/data/bench-sentences.txt`
//! (about 45 distinct rows a pair), 256-row pages (55 KB) cost a median 1.3 MB of pages per
//! pair, 16-row pages (3.5 KB) 0.09 MB. Prefetched rows never pay for themselves in bytes
//! (each 1,024 rows, 0.22 MB, save about 0.01 MB of pages) but they do in requests: the
//! first 1,024 rows hold the pieces of almost every text (punctuation, `▁`, the E5
//! prefixes, frequent words) and cut the median from 32 page requests to 25. With 16-row
//! pages and 1,024 rows the median pair needs 9.81 MB before its first alignment (90th
//! percentile 9.96, largest 10.23); a 4,096-row prefetch would cost 0.65 MB more for five
//! requests fewer.
//! Hence [`DEFAULT_PAGE_ROWS`] = 16 and [`DEFAULT_PREFETCH_ROWS`] = 1,024
//! (`scripts/rows-per-pair.py` prints the whole table).
//!
//! The core reads embedding rows from `EncoderWeights::token_embd`, a full-size table whose
//! absent rows are zero, and [`ProgressiveBackend`] fills the rows a batch needs, and waits
//! for the blocks it runs, before handing the batch to the running backend. A page that
//! arrives is written into that backend in place ([`WriteRows`]: the CPU backend's table,
//! which is the model's, or one `write_buffer` into the WebGPU table), and so is a block
//! ([`WriteBlocks`]: prepared into the CPU backend's block list, or uploaded and appended to
//! the WebGPU layer list): the table is never copied and the backend never rebuilt. Absent
//! rows never reach the encoder (every id of every sequence is checked first), and neither
//! do absent blocks (the backends refuse to run them, as a second line of defence).
//!
//! Servers that ignore `Range` answer the first request with the whole file; loading then
//! simply continues as a full download.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use js_sys::Uint8Array;
use serde::Serialize;
use web_sys::{AbortSignal, Response};
use xlalign_core::align::AlignOptions;
use xlalign_core::backend::{
    ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair, WriteBlocks, WriteRows,
};
use xlalign_core::gguf::{GgufFile, GgufHeader, TensorInfo};
use xlalign_core::model::layout::Layout;
use xlalign_core::model::EncoderLayer;
use xlalign_core::table::RowTable;
use xlalign_core::{Backend, BackendInfo, Model};
use xlalign_gpu::AnyBackend;

use crate::cache;
use crate::error::{Code, Result, WasmError};
use crate::fetch::{self, BodyReader, Priority, Progress};
use crate::fill::Changed;

/// See the module documentation for how these were chosen.
pub const DEFAULT_PREFETCH_ROWS: usize = 1024;
pub const DEFAULT_PAGE_ROWS: usize = 16;
/// First header parse attempt (the e5 header is 1.6 MB).
const FIRST_HEADER_TRY: usize = 64 * 1024;

/// Where to try parsing the header next after a prefix of `len` bytes ended inside it.
/// Until the header parses, the end of the bytes needed is unknown, and the request streams
/// on: every byte read past that end before the next attempt, and whatever is in flight
/// when the request is then cancelled, is a byte too many. Steps of an eighth (at least
/// 256 KB) keep that under 256 KB for headers up to 2 MB and under an eighth beyond (a
/// 1.6 MB header parses 7 times, each a few milliseconds that overlap the download;
/// steps of a quarter and 1 MB cost 0.55 MB, half a second at 10 Mbit/s).
fn next_header_try(len: usize) -> usize {
    len + (len / 8).max(256 << 10)
}

pub struct Settings {
    pub prefetch_rows: usize,
    pub page_rows: usize,
    /// See `LoadOptions::idle_start_ms`: `None` waits for a call (or `whenLoaded`).
    pub idle_start_ms: Option<i32>,
    pub cache: bool,
}

/// What loading produced: the whole file (the server ignored ranges, the file was cached
/// whole, or nothing is left to load later), or a model that fills in while it runs.
pub enum Outcome {
    Full(Vec<u8>),
    Ready(Rc<Store>),
}

/// Counters for `aligner.loading`.
#[derive(Clone, Debug, Default, Serialize, tsify::Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "LoadingInfo")]
pub struct Stats {
    /// `"full"`, or `"progressive"` (parts of the model arrive after it is ready).
    pub mode: String,
    /// Bytes that had to arrive before the aligner was ready (network and cache).
    pub ready_bytes: u64,
    /// Bytes downloaded so far: on-demand pages, deeper blocks and the cache fill included.
    pub network_bytes: u64,
    /// HTTP requests made (Range requests in progressive mode).
    pub requests: u32,
    pub rows_present: usize,
    pub rows_total: usize,
    /// Transformer blocks present: layers up to this one can be computed. The sentence
    /// cosine needs all (`layersPresent == layersTotal`; `whenLoaded()` waits for that).
    pub layers_present: usize,
    pub layers_total: usize,
    pub page_rows: usize,
    pub pages_fetched: usize,
    pub pages_from_cache: usize,
}

/// The parts of a model still arriving: the word-embedding table being filled and the
/// blocks being added, with the model (its table zero where rows are absent) and the
/// backend running it, both written in place as parts arrive.
pub struct Store {
    pub(crate) url: String,
    /// The server's version of the file the loaded parts came from; every later part must
    /// come from the same one.
    pub(crate) version: Option<String>,
    pub(crate) total: usize,
    pub(crate) layout: Layout,
    /// The header's tensor directory, to read blocks that arrive later.
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) page_rows: usize,
    pub(crate) cache: bool,
    pub(crate) present: RefCell<Vec<bool>>,
    model: Arc<Model>,
    /// Set once, after `load`; until then pages go into the model's table, which the backend
    /// starts from. (The CPU backend reads that same table; on WebGPU the model's table keeps
    /// only the rows that arrived before the upload, and nothing reads it afterwards.)
    inner: RefCell<Option<Rc<AnyBackend>>>,
    /// A page fetch is under way; other calls wait for it instead of fetching again, and
    /// the background fill waits until none is.
    pub(crate) updating: Cell<bool>,
    /// A block fetch is under way.
    pub(crate) fetching_block: Cell<bool>,
    /// Backend calls running (the background gives way to them, see [`crate::fill`]).
    pub(crate) busy: Cell<usize>,
    /// Woken whenever pages or a block arrive, or a fetch ends.
    pub(crate) changed: Changed,
    pub(crate) stats: RefCell<Stats>,
    /// Why the background loading stopped before the whole file was here, if it did.
    pub(crate) stopped: RefCell<Option<String>>,
    /// Backend calls that have ended, and whether someone waits for the whole model
    /// (`whenLoaded`, `whenStored`): the background starts after either (see [`crate::fill`]).
    pub(crate) calls_ended: Cell<u64>,
    pub(crate) wanted: Cell<bool>,
    /// Milliseconds without a call after which the background starts anyway (`None`: it
    /// waits for a call or `wanted`).
    pub(crate) idle_start_ms: Option<i32>,
}

impl Store {
    pub fn model(&self) -> Arc<Model> {
        self.model.clone()
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.borrow().clone();
        s.rows_present = self.present.borrow().iter().filter(|&&p| p).count() * self.page_rows;
        s.rows_present = s.rows_present.min(self.layout.table.rows);
        s.layers_present = self.blocks_present();
        s.layers_total = self.layers_total();
        s
    }

    /// Waits until every part of the file is here and, the cache being on, kept in it (the
    /// background fill stores a range before writing its rows): what `whenStored()` waits for.
    pub async fn ensure_stored(&self) -> Result<()> {
        if !self.cache {
            return Err(WasmError::input(
                "with `cache: false` the rest of the model is fetched only on demand and never stored",
            ));
        }
        self.want_all();
        loop {
            let s = self.stats();
            if s.rows_present >= s.rows_total && s.layers_present >= s.layers_total {
                return Ok(());
            }
            if let Some(why) = self.stopped.borrow().clone() {
                return Err(WasmError::network(format!(
                    "the rest of the model could not be loaded: {why}"
                )));
            }
            self.changed.wait().await;
        }
    }

    /// Someone waits for the whole model: the background need not wait for a first call.
    pub fn want_all(&self) {
        self.wanted.set(true);
        self.changed.notify();
    }

    pub fn layers_total(&self) -> usize {
        self.model.config.layers
    }

    /// Blocks the backend has (the blocks read with the model before it has one).
    pub fn blocks_present(&self) -> usize {
        match self.inner.borrow().as_ref() {
            Some(b) => b.blocks_present(),
            None => self.model.weights.layers.len(),
        }
    }

    /// Opens the backend for the model as loaded; called once, after `load`.
    pub fn set_backend(&self, b: AnyBackend) {
        *self.inner.borrow_mut() = Some(Rc::new(b));
    }

    pub(crate) fn backend(&self) -> Result<Rc<AnyBackend>> {
        self.inner
            .borrow()
            .clone()
            .ok_or_else(|| WasmError::new(Code::Backend, "no backend yet"))
    }

    fn pages_missing(&self, ids: impl Iterator<Item = u32>) -> BTreeSet<usize> {
        let present = self.present.borrow();
        ids.map(|i| i as usize)
            .filter(|&i| i < self.layout.table.rows)
            .map(|i| i / self.page_rows)
            .filter(|&p| !present[p])
            .collect()
    }

    /// Makes sure every row in `ids` has arrived.
    pub async fn ensure(&self, ids: &[u32]) -> Result<()> {
        loop {
            let missing = self.pages_missing(ids.iter().copied());
            if missing.is_empty() {
                return Ok(());
            }
            if self.updating.get() {
                self.changed.wait().await;
                continue;
            }
            self.updating.set(true);
            let r = self.fetch_pages(&missing).await;
            self.updating.set(false);
            self.changed.notify();
            r?;
        }
    }

    pub(crate) fn page_range(&self, first: usize, last: usize) -> (usize, usize) {
        let t = &self.layout.table;
        let start = t.offset + first * self.page_rows * t.row_bytes;
        let end = (t.offset + (last + 1) * self.page_rows * t.row_bytes).min(t.end());
        (start, end)
    }

    async fn fetch_pages(&self, pages: &BTreeSet<usize>) -> Result<()> {
        // Consecutive pages go in one request; separate runs are requested side by side.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &p in pages {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == p => *last = p,
                _ => runs.push((p, p)),
            }
        }
        let fetches = runs.iter().map(|&(a, b)| {
            let (start, end) = self.page_range(a, b);
            fetch_range(
                &self.url,
                start,
                end,
                self.version.as_deref(),
                self.total,
                Priority::High,
            )
        });
        let results = futures_util::future::join_all(fetches).await;
        let mut writes: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut whole = None;
        {
            let mut st = self.stats.borrow_mut();
            for (r, &(a, b)) in results.into_iter().zip(&runs) {
                st.requests += 1;
                match r? {
                    Ranged::Part(bytes) => {
                        st.network_bytes += bytes.len() as u64;
                        st.pages_fetched += b - a + 1;
                        writes.push((a, bytes));
                    }
                    Ranged::Whole(bytes) => {
                        st.network_bytes += bytes.len() as u64;
                        whole = Some(bytes);
                    }
                }
            }
        }
        if let Some(file) = whole {
            return self.take_whole(file);
        }
        if self.cache {
            for (first, bytes) in &writes {
                let page_bytes = self.page_rows * self.layout.table.row_bytes;
                for (k, chunk) in bytes.chunks(page_bytes).enumerate() {
                    let key = page_key(&self.url, self.page_rows, first + k, self.total);
                    remember(&key, chunk, true, self.version.as_deref()).await;
                }
            }
        }
        let writes: Vec<(usize, &[u8])> = writes.iter().map(|(p, b)| (*p, &b[..])).collect();
        self.apply(&writes)
    }

    /// The server stopped honouring ranges and sent the whole file: take every row and
    /// block still missing from it.
    pub(crate) fn take_whole(&self, file: Vec<u8>) -> Result<()> {
        let t = self.layout.table;
        if file.len() != self.total {
            return Err(WasmError::network(format!(
                "the model changed on the server ({} bytes, was {})",
                file.len(),
                self.total
            )));
        }
        self.apply(&[(0, &file[t.offset..t.end()])])?;
        let file = Bytes::from(file);
        for i in self.blocks_present()..self.layers_total() {
            let r = self.layout.blocks[i].clone();
            self.add_block(i, &self.read_block(i, r.start, file.slice(r))?)?;
        }
        self.stats.borrow_mut().mode = "full (the server stopped honouring ranges)".into();
        Ok(())
    }

    /// Block `i` from `bytes`, the file's bytes from offset `start` on.
    pub(crate) fn read_block(&self, i: usize, start: usize, bytes: Bytes) -> Result<EncoderLayer> {
        Ok(xlalign_core::model::read_block(
            &self.model.config,
            &self.tensors,
            i,
            start,
            &bytes,
        )?)
    }

    /// Adds block `i` to the running backend.
    pub(crate) fn add_block(&self, i: usize, block: &EncoderLayer) -> Result<()> {
        self.backend()?.add_block(i, block)?;
        self.changed.notify();
        Ok(())
    }

    /// Writes rows (`(first page, bytes)`) into the running backend, or into the model's
    /// table while there is none yet, and marks their pages present. Synchronous, so no call
    /// runs in between: a call already under way on WebGPU was submitted before these
    /// writes and reads none of these (absent) rows anyway.
    pub(crate) fn apply(&self, writes: &[(usize, &[u8])]) -> Result<()> {
        let t = self.layout.table;
        let backend = self.inner.borrow().clone();
        let mut present = self.present.borrow_mut();
        for &(first, bytes) in writes {
            let row = first * self.page_rows;
            let n = (bytes.len() / t.row_bytes).min(t.rows.saturating_sub(row));
            let rows = &bytes[..n * t.row_bytes];
            match &backend {
                Some(b) => b.write_token_rows(row, rows)?,
                None => self.model.weights.token_embd.write_rows(row, rows)?,
            }
            for p in first..(first + n.div_ceil(self.page_rows)).min(present.len()) {
                present[p] = true;
            }
        }
        drop(present);
        self.changed.notify();
        Ok(())
    }
}

/// The backend the aligner uses in progressive mode: fills missing rows and waits for the
/// blocks a call runs, then runs the current backend.
#[derive(Clone)]
pub struct ProgressiveBackend(pub Rc<Store>);

/// Counts a backend call as running while it lives.
struct Busy<'a>(&'a Store);

impl<'a> Busy<'a> {
    fn new(s: &'a Store) -> Busy<'a> {
        s.busy.set(s.busy.get() + 1);
        Busy(s)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.set(self.0.busy.get() - 1);
        self.0.calls_ended.set(self.0.calls_ended.get() + 1);
        self.0.changed.notify();
    }
}

impl ProgressiveBackend {
    /// The backend running the model (parts are written into it as they arrive).
    fn current(&self) -> xlalign_core::Result<Rc<AnyBackend>> {
        self.0
            .backend()
            .map_err(|e| xlalign_core::Error::Backend(e.message))
    }

    /// Fetches the embedding rows `sequences` read and waits for the blocks up to `layer`,
    /// then returns the backend that has them.
    async fn ready_for(
        &self,
        sequences: &[&[u32]],
        layer: usize,
    ) -> xlalign_core::Result<Rc<AnyBackend>> {
        let io = |e: WasmError| xlalign_core::Error::Io(e.message);
        self.0.ensure_blocks(layer).await.map_err(io)?;
        let ids: Vec<u32> = sequences.iter().flat_map(|s| s.iter().copied()).collect();
        self.0.ensure(&ids).await.map_err(io)?;
        self.current()
    }
}

/// Rows written here go into the running backend as fetched pages do; their pages are not
/// marked present (a write may cover part of a page), so `ensure` still fetches those pages.
impl WriteRows for ProgressiveBackend {
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> xlalign_core::Result<()> {
        self.current()?.write_token_rows(first, rows)
    }
}

/// Blocks added here go into the running backend as fetched blocks do.
impl WriteBlocks for ProgressiveBackend {
    fn blocks_present(&self) -> usize {
        self.0.blocks_present()
    }

    fn add_block(&self, index: usize, block: &EncoderLayer) -> xlalign_core::Result<()> {
        self.current()?.add_block(index, block)?;
        self.0.changed.notify();
        Ok(())
    }
}

impl Backend for ProgressiveBackend {
    fn info(&self) -> BackendInfo {
        match self.0.inner.borrow().as_ref() {
            Some(b) => b.info(),
            None => BackendInfo {
                kind: "none".into(),
                device: String::new(),
                reason: String::new(),
            },
        }
    }

    async fn forward(
        &self,
        sequences: &[&[u32]],
        layers: &[usize],
    ) -> xlalign_core::Result<Vec<ForwardOutput>> {
        let _busy = Busy::new(&self.0);
        let deepest = layers.iter().copied().max().unwrap_or(0);
        self.ready_for(sequences, deepest)
            .await?
            .forward(sequences, layers)
            .await
    }

    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> xlalign_core::Result<Option<Vec<UnitAlignment>>> {
        let _busy = Busy::new(&self.0);
        self.current()?.align_units(pairs, opts).await
    }

    async fn align_sequences(
        &self,
        sequences: &[&[u32]],
        layer: usize,
        pooled: bool,
        pairs: &[SequencePair<'_>],
        opts: &AlignOptions,
    ) -> xlalign_core::Result<Option<SequenceAlignment>> {
        // The encoder runs inside, so the rows it reads and the blocks it runs (all of them
        // when it pools) must be present first, as for `forward`.
        let _busy = Busy::new(&self.0);
        let deepest = if pooled { self.0.layers_total() } else { layer };
        self.ready_for(sequences, deepest)
            .await?
            .align_sequences(sequences, layer, pooled, pairs, opts)
            .await
    }
}

pub(crate) enum Ranged {
    Part(Vec<u8>),
    /// The server answered a range request with the whole file.
    Whole(Vec<u8>),
}

/// Bytes `start..end` (end exclusive) of `url`, which must still be the file of `version`
/// and `total` bytes that the other parts came from.
pub(crate) async fn fetch_range(
    url: &str,
    start: usize,
    end: usize,
    version: Option<&str>,
    total: usize,
    priority: Priority,
) -> Result<Ranged> {
    let resp = fetch::get_with(
        url,
        Some((start as u64, Some(end as u64 - 1))),
        None,
        priority,
    )
    .await?;
    same_file(url, version, total, &resp).await?;
    let mut quiet = Progress::new(None);
    if resp.status() == 200 {
        return Ok(Ranged::Whole(
            fetch::read_all(&resp, "download", &mut quiet).await?,
        ));
    }
    check_range(&resp, start)?;
    let bytes = fetch::read_all(&resp, "rows", &mut quiet).await?;
    if bytes.len() != end - start {
        return Err(WasmError::network(format!(
            "asked for bytes {start}..{end} of {url}, got {}",
            bytes.len()
        )));
    }
    Ok(Ranged::Part(bytes))
}

fn check_range(resp: &Response, start: usize) -> Result<Option<u64>> {
    match fetch::content_range(resp) {
        Some((s, _, total)) if s == start as u64 => Ok(total),
        other => Err(WasmError::network(format!(
            "the server answered a range request with Content-Range {other:?}"
        ))),
    }
}

/// Fails when `resp` comes from another file than the parts loaded so far (the file was
/// replaced on the server meanwhile), and forgets the cached parts so that the next load
/// starts afresh: parts of two versions must never be mixed.
async fn same_file(url: &str, version: Option<&str>, total: usize, resp: &Response) -> Result<()> {
    if !fetch::replaced(version, Some(total as u64), resp) {
        return Ok(());
    }
    cache::forget(url).await;
    Err(WasmError::network(format!(
        "the model file at {url} changed on the server while it was being loaded; load it again to use the new version"
    )))
}

fn page_key(url: &str, page_rows: usize, page: usize, total: usize) -> String {
    cache::part_key(url, &format!("rows-{page_rows}-{page}-of-{total}"))
}

pub(crate) async fn cached(key: &str, use_cache: bool) -> Option<cache::Entry> {
    if !use_cache {
        return None;
    }
    cache::lookup(key).await
}

pub(crate) async fn remember(key: &str, bytes: &[u8], use_cache: bool, version: Option<&str>) {
    if use_cache {
        let data = Uint8Array::from(bytes);
        if let Ok(sha) = cache::sha256_hex(&data).await {
            cache::store(key, &data, &sha, version).await;
        }
    }
}

/// Loads `url` progressively (see the module documentation).
pub async fn load(
    url: &str,
    s: &Settings,
    progress: &mut Progress,
    signal: Option<&AbortSignal>,
) -> Result<Outcome> {
    let use_cache = s.cache && cache::available();
    if use_cache {
        if let Some(entry) = cache::lookup(url).await {
            let n = entry.data.length() as u64;
            if !fetch::changed_on_server(url, entry.version.as_deref(), n).await {
                progress.report("cache", n, Some(n), true);
                return Ok(Outcome::Full(entry.data.to_vec()));
            }
            cache::forget(url).await;
        }
    }
    let mut stats = Stats {
        mode: "progressive".into(),
        page_rows: s.page_rows,
        ..Default::default()
    };
    let prefix_key = cache::part_key(url, &format!("prefix-{}", s.prefetch_rows));

    // 1. The header and the first rows: from the cache (when the server still has the file
    //    they came from), or one streamed request.
    let mut version = None;
    let mut from_cache = None;
    if let Some(entry) = cached(&prefix_key, use_cache).await {
        let p = entry.data.to_vec();
        let parsed = cache_total(&p).and_then(|total| {
            let h = GgufHeader::parse(&p[8..], total).ok()?;
            let layout = Layout::plan(&h, s.prefetch_rows)?;
            (p.len() - 8 == layout.stop).then_some((h, layout))
        });
        match parsed {
            Some((h, layout))
                if !fetch::changed_on_server(url, entry.version.as_deref(), h.file_len as u64)
                    .await =>
            {
                version = entry.version;
                from_cache = Some((p[8..].to_vec(), h, layout));
            }
            _ => cache::forget(url).await,
        }
    }
    let (prefix, header, layout) = match from_cache {
        Some((p, h, layout)) => {
            progress.report("cache", p.len() as u64, None, true);
            stats.ready_bytes += p.len() as u64;
            (p, h, layout)
        }
        None => {
            // Stopping this request part-way must stop the transfer itself, not just the
            // reading: a cancelled body alone lets the browser keep receiving what the
            // server already sent.
            let stopper = web_sys::AbortController::new()
                .map_err(|e| WasmError::network(crate::error::describe_js(&e)))?;
            let both = fetch::any_signal(&stopper.signal(), signal);
            let resp = fetch::get(url, Some((0, None)), Some(&both)).await?;
            stats.requests += 1;
            version = fetch::version(&resp);
            if resp.status() == 200 {
                // Range ignored: this response is the whole file.
                let bytes = fetch::read_all(&resp, "download", progress).await?;
                remember(url, &bytes, use_cache, version.as_deref()).await;
                return Ok(Outcome::Full(bytes));
            }
            let total = check_range(&resp, 0)?.ok_or_else(|| {
                WasmError::network(
                    "the server did not say how large the model file is (Content-Range)",
                )
            })? as usize;
            let streamed = stream_prefix(&resp, total, s.prefetch_rows, progress).await;
            stopper.abort();
            match streamed? {
                Prefix::Planned {
                    bytes,
                    header,
                    layout,
                } => {
                    stats.network_bytes += bytes.len() as u64;
                    stats.ready_bytes += bytes.len() as u64;
                    let mut stored = (total as u64).to_le_bytes().to_vec();
                    stored.extend_from_slice(&bytes);
                    remember(&prefix_key, &stored, use_cache, version.as_deref()).await;
                    (bytes, header, layout)
                }
                Prefix::Whole(bytes) => {
                    remember(url, &bytes, use_cache, version.as_deref()).await;
                    return Ok(Outcome::Full(bytes));
                }
            }
        }
    };
    let total = header.file_len;
    let (table, stop, ready_end) = (layout.table, layout.stop, layout.ready_end);

    // 2. Every other tensor the first alignment needs, after the table, in one request.
    let tail_key = cache::part_key(url, &format!("tail-{}-{ready_end}-of-{total}", table.end()));
    let tail_len = ready_end - table.end();
    let tail = cached(&tail_key, use_cache)
        .await
        .filter(|t| t.data.length() as usize == tail_len && t.version == version)
        .map(|t| t.data.to_vec());
    let tail = match tail {
        // The table is the file's last tensor the first alignment needs.
        _ if tail_len == 0 => Vec::new(),
        Some(t) => {
            stats.ready_bytes += t.len() as u64;
            t
        }
        None => {
            let resp = fetch::get(
                url,
                Some((table.end() as u64, Some(ready_end as u64 - 1))),
                signal,
            )
            .await?;
            stats.requests += 1;
            same_file(url, version.as_deref(), total, &resp).await?;
            if resp.status() == 200 {
                let bytes = fetch::read_all(&resp, "download", progress).await?;
                remember(url, &bytes, use_cache, version.as_deref()).await;
                return Ok(Outcome::Full(bytes));
            }
            check_range(&resp, table.end())?;
            let mut p = Progress::offset(progress, stop as u64, (stop + tail_len) as u64);
            let t = fetch::read_all(&resp, "download", &mut p).await?;
            if t.len() != tail_len {
                return Err(WasmError::network(
                    "the model file's tail arrived incomplete",
                ));
            }
            stats.network_bytes += t.len() as u64;
            stats.ready_bytes += t.len() as u64;
            remember(&tail_key, &t, use_cache, version.as_deref()).await;
            t
        }
    };

    // 3. A full-size file with the absent parts zero, parsed as usual with the blocks that
    //    arrived; then the table moves to its own buffer (which pages are later written into
    //    in place) and the other tensors are copied out, so the file buffer can go.
    progress.report("parse", 0, None, true);
    // `total` is the length the server gave: refused with an error, not a trap, when this
    // browser cannot hold that much.
    let mut file = Vec::new();
    file.try_reserve_exact(total).map_err(|_| {
        WasmError::new(
            Code::Model,
            format!("the model file ({total} bytes) does not fit in this browser's memory"),
        )
    })?;
    file.resize(total, 0);
    file[..stop].copy_from_slice(&prefix[..stop]);
    drop(prefix);
    file[table.end()..ready_end].copy_from_slice(&tail);
    drop(tail);
    let file = GgufFile::parse(Bytes::from(file))?;
    let mut model = Model::from_gguf_with_blocks(&file, layout.first_blocks)?;
    let t = &model.weights.token_embd;
    let own = t.read().bytes().to_vec();
    model.weights.token_embd = RowTable::owned(t.name.clone(), t.dtype, t.shape.clone(), own)?;
    for l in &mut model.weights.layers {
        for lin in [
            &mut l.query,
            &mut l.key,
            &mut l.value,
            &mut l.attn_output,
            &mut l.ffn_up,
            &mut l.ffn_down,
        ] {
            lin.weight.data = Bytes::copy_from_slice(&lin.weight.data);
        }
    }
    drop(file);

    let pages = table.rows.div_ceil(s.page_rows);
    let mut present = vec![false; pages];
    let have_rows = layout.prefetched_rows();
    present
        .iter_mut()
        .take(have_rows / s.page_rows)
        .for_each(|p| *p = true);
    stats.rows_total = table.rows;
    let store = Rc::new(Store {
        url: url.to_string(),
        version,
        total,
        layout,
        tensors: header.tensors,
        page_rows: s.page_rows,
        cache: use_cache,
        present: RefCell::new(present),
        model: Arc::new(model),
        inner: RefCell::new(None),
        updating: Cell::new(false),
        fetching_block: Cell::new(false),
        busy: Cell::new(0),
        changed: Changed::default(),
        stats: RefCell::new(stats),
        stopped: RefCell::new(None),
        calls_ended: Cell::new(0),
        wanted: Cell::new(false),
        idle_start_ms: s.idle_start_ms,
    });

    // 4. Rows cached by earlier visits (on-demand pages and the background fill's ranges).
    if use_cache {
        crate::fill::restore_rows(&store).await;
    }
    Ok(Outcome::Ready(store))
}

/// The prefix part is stored with the file size in front (8 bytes, little-endian).
fn cache_total(p: &[u8]) -> Option<usize> {
    Some(u64::from_le_bytes(p.get(..8)?.try_into().ok()?) as usize)
}

enum Prefix {
    Planned {
        bytes: Vec<u8>,
        header: GgufHeader,
        layout: Layout,
    },
    Whole(Vec<u8>),
}

/// Reads the first response until the header parses and the first rows are in, then
/// cancels it. Progress counts towards the bytes needed to be ready, once they are known.
async fn stream_prefix(
    resp: &Response,
    total: usize,
    prefetch_rows: usize,
    progress: &mut Progress,
) -> Result<Prefix> {
    let mut reader = BodyReader::new(resp)?;
    let mut buf = Vec::new();
    let mut next_try = FIRST_HEADER_TRY;
    let mut planned: Option<(GgufHeader, Option<Layout>)> = None;
    let mut ready_total: Option<u64> = None;
    progress.report("download", 0, None, true);
    while reader.next_into(&mut buf).await? {
        if planned.is_none() && buf.len() >= next_try.min(total) {
            match GgufHeader::parse(&buf, total) {
                Ok(h) => {
                    let p = Layout::plan(&h, prefetch_rows);
                    ready_total = p.as_ref().map(|l| l.ready_bytes() as u64);
                    planned = Some((h, p));
                }
                // A prefix that ends inside the header: read on. Anything else is final.
                Err(e) if e.to_string().contains("truncated") && buf.len() < total => {
                    next_try = next_header_try(buf.len())
                }
                Err(e) => return Err(e.into()),
            }
        }
        progress.report(
            "download",
            buf.len() as u64,
            ready_total.or(Some(total as u64)),
            false,
        );
        if let Some((_, Some(l))) = &planned {
            if buf.len() >= l.stop {
                break;
            }
        }
    }
    match planned {
        Some((header, Some(layout))) if buf.len() >= layout.stop => {
            reader.cancel().await;
            buf.truncate(layout.stop);
            Ok(Prefix::Planned {
                bytes: buf,
                header,
                layout,
            })
        }
        // Nothing to load later: the whole file was read.
        _ if buf.len() == total => Ok(Prefix::Whole(buf)),
        None => Err(GgufHeader::parse(&buf, total)
            .err()
            .map(WasmError::from)
            .unwrap_or_else(|| WasmError::network("the model download ended early"))),
        _ => Err(WasmError::network(format!(
            "the model download ended after {} of {total} bytes",
            buf.len()
        ))),
    }
}
