//! Progressive loading: the aligner is ready once the file header (with the tokenizer),
//! every tensor except most of the 250k-row word-embedding table, and the table's first
//! rows have arrived. Rows are ordered by the tokenizer's piece scores, i.e. by frequency,
//! so the first ones cover most text; the others are fetched in pages with HTTP Range
//! requests the first time an encoder call needs them, and kept in the Cache API.
//!
//! For multilingual-e5-small (76 MB: 9 MB header, 54 MB table, 13 MB other tensors) the
//! defaults make it ready after about 26 MB.
//!
//! The core reads embedding rows from `EncoderWeights::token_embd`, a full-size table whose
//! absent rows are zero, and [`ProgressiveBackend`] fills the rows a batch needs before
//! handing the batch to the running backend. A page that arrives is written into that
//! backend in place ([`WriteRows`]: the CPU backend's table, which is the model's, or one
//! `write_buffer` into the WebGPU table): the table is never copied and the backend never
//! rebuilt. Absent rows never reach the encoder: every id of every sequence is checked first.
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
    ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair, WriteRows,
};
use xlalign_core::gguf::{GgufFile, GgufHeader};
use xlalign_core::table::RowTable;
use xlalign_core::{Backend, BackendInfo, Model};
use xlalign_gpu::AnyBackend;

use crate::cache;
use crate::error::{Code, Result, WasmError};
use crate::fetch::{self, BodyReader, Progress};

pub const DEFAULT_PREFETCH_ROWS: usize = 16384;
pub const DEFAULT_PAGE_ROWS: usize = 256;
const TABLE: &str = "token_embd.weight";
/// First header parse attempt (the e5 header is 9 MB).
const FIRST_HEADER_TRY: usize = 64 * 1024;

/// Where to try parsing the header next after a prefix of `len` bytes ended inside it.
/// Until the header parses, the end of the bytes needed is unknown, so every byte read past
/// it before the next attempt may be a byte too many: with doubling, the e5 header (9 MB)
/// would parse only at 17 MB, 4.5 MB past the 12.6 MB the first request needs. Steps of a
/// quarter (at least 1 MB) keep that waste under a quarter of the header, for about five
/// parses' worth of work in total.
fn next_header_try(len: usize) -> usize {
    len + (len / 4).max(1 << 20)
}

pub struct Settings {
    pub prefetch_rows: usize,
    pub page_rows: usize,
    pub cache: bool,
}

/// What loading produced: the whole file (the server ignored ranges, the file was cached
/// whole, or the prefetch covers the table anyway), or a model whose table fills on demand.
pub enum Outcome {
    Full(Vec<u8>),
    Ready(Rc<RowStore>),
}

/// Where the embedding rows are in the file.
#[derive(Clone, Copy, Debug)]
struct Table {
    offset: usize,
    row_bytes: usize,
    rows: usize,
}

impl Table {
    fn end(&self) -> usize {
        self.offset + self.rows * self.row_bytes
    }
}

/// Counters for `aligner.loading`.
#[derive(Clone, Debug, Default, Serialize, tsify::Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "LoadingInfo")]
pub struct Stats {
    /// `"full"`, or `"progressive"` (rows of the word-embedding table arrive on demand).
    pub mode: String,
    /// Bytes that had to arrive before the aligner was ready (network and cache).
    pub ready_bytes: u64,
    /// Bytes downloaded so far, on-demand pages included.
    pub network_bytes: u64,
    /// HTTP requests made (Range requests in progressive mode).
    pub requests: u32,
    pub rows_present: usize,
    pub rows_total: usize,
    pub page_rows: usize,
    pub pages_fetched: usize,
    pub pages_from_cache: usize,
}

/// The word-embedding table being filled: the model (its table zero where rows are absent)
/// and the backend running it, both written in place as pages arrive.
pub struct RowStore {
    url: String,
    /// The server's version of the file the loaded parts came from; every later part must
    /// come from the same one.
    version: Option<String>,
    total: usize,
    table: Table,
    page_rows: usize,
    cache: bool,
    present: RefCell<Vec<bool>>,
    model: Arc<Model>,
    /// Set once, after `load`; until then pages go into the model's table, which the backend
    /// starts from. (The CPU backend reads that same table; on WebGPU the model's table keeps
    /// only the rows that arrived before the upload, and nothing reads it afterwards.)
    inner: RefCell<Option<Rc<AnyBackend>>>,
    /// A page fetch is under way; other calls wait for it instead of fetching again.
    updating: Cell<bool>,
    stats: RefCell<Stats>,
}

impl RowStore {
    pub fn model(&self) -> Arc<Model> {
        self.model.clone()
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.borrow().clone();
        s.rows_present = self.present.borrow().iter().filter(|&&p| p).count() * self.page_rows;
        s.rows_present = s.rows_present.min(self.table.rows);
        s
    }

    /// Opens the backend for the model as loaded; called once, after `load`.
    pub fn set_backend(&self, b: AnyBackend) {
        *self.inner.borrow_mut() = Some(Rc::new(b));
    }

    fn backend(&self) -> Result<Rc<AnyBackend>> {
        self.inner
            .borrow()
            .clone()
            .ok_or_else(|| WasmError::new(Code::Backend, "no backend yet"))
    }

    fn pages_missing(&self, ids: impl Iterator<Item = u32>) -> BTreeSet<usize> {
        let present = self.present.borrow();
        ids.map(|i| i as usize)
            .filter(|&i| i < self.table.rows)
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
                crate::aligner::yield_now().await;
                continue;
            }
            self.updating.set(true);
            let r = self.fetch_pages(&missing).await;
            self.updating.set(false);
            r?;
        }
    }

    fn page_range(&self, first: usize, last: usize) -> (usize, usize) {
        let t = &self.table;
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
            fetch_range(&self.url, start, end, self.version.as_deref(), self.total)
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
            // The server stopped honouring ranges and sent everything: take the whole table.
            let t = self.table;
            if file.len() != self.total {
                return Err(WasmError::network(format!(
                    "the model changed on the server ({} bytes, was {})",
                    file.len(),
                    self.total
                )));
            }
            self.apply(&[(0, &file[t.offset..t.end()])])?;
            self.stats.borrow_mut().mode = "full (the server stopped honouring ranges)".into();
            return Ok(());
        }
        if self.cache {
            for (first, bytes) in &writes {
                for (k, chunk) in bytes
                    .chunks(self.page_rows * self.table.row_bytes)
                    .enumerate()
                {
                    let data = Uint8Array::from(chunk);
                    if let Ok(sha) = cache::sha256_hex(&data).await {
                        let key = page_key(&self.url, self.page_rows, first + k, self.total);
                        cache::store(&key, &data, &sha, self.version.as_deref()).await;
                    }
                }
            }
        }
        let writes: Vec<(usize, &[u8])> = writes.iter().map(|(p, b)| (*p, &b[..])).collect();
        self.apply(&writes)
    }

    /// Writes rows (`(first page, bytes)`) into the running backend, or into the model's
    /// table while there is none yet, and marks their pages present. Synchronous, so no call
    /// runs in between: a call already under way on WebGPU was submitted before these
    /// writes and reads none of these (absent) rows anyway.
    fn apply(&self, writes: &[(usize, &[u8])]) -> Result<()> {
        let t = self.table;
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
        Ok(())
    }
}

/// The backend the aligner uses in progressive mode: fills missing rows, then runs the
/// current backend.
#[derive(Clone)]
pub struct ProgressiveBackend(pub Rc<RowStore>);

impl ProgressiveBackend {
    /// The backend running the model (rows are written into it as they arrive).
    fn current(&self) -> xlalign_core::Result<Rc<AnyBackend>> {
        self.0
            .backend()
            .map_err(|e| xlalign_core::Error::Backend(e.message))
    }

    /// Fetches the embedding rows `sequences` read, then returns the backend that has them.
    async fn ready_for(&self, sequences: &[&[u32]]) -> xlalign_core::Result<Rc<AnyBackend>> {
        let ids: Vec<u32> = sequences.iter().flat_map(|s| s.iter().copied()).collect();
        self.0
            .ensure(&ids)
            .await
            .map_err(|e| xlalign_core::Error::Io(e.message))?;
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
        self.ready_for(sequences)
            .await?
            .forward(sequences, layers)
            .await
    }

    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> xlalign_core::Result<Option<Vec<UnitAlignment>>> {
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
        // The encoder runs inside, so the rows it reads must be present first, as for `forward`.
        self.ready_for(sequences)
            .await?
            .align_sequences(sequences, layer, pooled, pairs, opts)
            .await
    }
}

enum Ranged {
    Part(Vec<u8>),
    /// The server answered a range request with the whole file.
    Whole(Vec<u8>),
}

/// Bytes `start..end` (end exclusive) of `url`, which must still be the file of `version`
/// and `total` bytes that the other parts came from.
async fn fetch_range(
    url: &str,
    start: usize,
    end: usize,
    version: Option<&str>,
    total: usize,
) -> Result<Ranged> {
    let resp = fetch::get(url, Some((start as u64, Some(end as u64 - 1))), None).await?;
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
/// starts afresh: rows of two versions must never be mixed.
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

async fn cached(key: &str, use_cache: bool) -> Option<cache::Entry> {
    if !use_cache {
        return None;
    }
    cache::lookup(key).await
}

async fn remember(key: &str, bytes: &[u8], use_cache: bool, version: Option<&str>) {
    if use_cache {
        let data = Uint8Array::from(bytes);
        if let Ok(sha) = cache::sha256_hex(&data).await {
            cache::store(key, &data, &sha, version).await;
        }
    }
}

/// The table's position, if its rows can be fetched one by one.
fn table_of(h: &GgufHeader) -> Option<Table> {
    let t = h.tensors.iter().find(|t| t.name == TABLE)?;
    let rows = *t.shape.first()?;
    if rows == 0 || t.n_bytes % rows != 0 || t.shape.len() != 2 {
        return None;
    }
    Some(Table {
        offset: t.offset,
        row_bytes: t.n_bytes / rows,
        rows,
    })
}

/// Bytes needed before the aligner can start: the header and first rows, then the tail.
fn plan(h: &GgufHeader, prefetch_rows: usize) -> Option<(Table, usize)> {
    let t = table_of(h)?;
    // Every other tensor must lie before the table or after it (true of llama.cpp-style
    // files); the prefix covers the former, the tail the latter.
    let stop = (t.offset + prefetch_rows.min(t.rows) * t.row_bytes).max(h.data_offset);
    (stop < t.end()).then_some((t, stop))
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
            let (t, stop) = plan(&h, s.prefetch_rows)?;
            (p.len() - 8 == stop).then_some((h, t, stop))
        });
        match parsed {
            Some((h, t, stop))
                if !fetch::changed_on_server(url, entry.version.as_deref(), h.file_len as u64)
                    .await =>
            {
                version = entry.version;
                from_cache = Some((p[8..].to_vec(), h, t, stop));
            }
            _ => cache::forget(url).await,
        }
    }
    let (prefix, header, table, stop) = match from_cache {
        Some((p, h, t, stop)) => {
            progress.report("cache", p.len() as u64, None, true);
            stats.ready_bytes += p.len() as u64;
            (p, h, t, stop)
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
                    table,
                    stop,
                } => {
                    stats.network_bytes += bytes.len() as u64;
                    stats.ready_bytes += bytes.len() as u64;
                    let mut stored = (total as u64).to_le_bytes().to_vec();
                    stored.extend_from_slice(&bytes);
                    remember(&prefix_key, &stored, use_cache, version.as_deref()).await;
                    (bytes, header, table, stop)
                }
                Prefix::Whole(bytes) => {
                    remember(url, &bytes, use_cache, version.as_deref()).await;
                    return Ok(Outcome::Full(bytes));
                }
            }
        }
    };
    let total = header.file_len;

    // 2. Every tensor after the table, in one request.
    let tail_key = cache::part_key(url, &format!("tail-{}-of-{total}", table.end()));
    let tail = cached(&tail_key, use_cache)
        .await
        .filter(|t| t.data.length() as usize == total - table.end() && t.version == version)
        .map(|t| t.data.to_vec());
    let tail = match tail {
        Some(t) => {
            stats.ready_bytes += t.len() as u64;
            t
        }
        None => {
            let resp = fetch::get(
                url,
                Some((table.end() as u64, Some(total as u64 - 1))),
                signal,
            )
            .await?;
            stats.requests += 1;
            same_file(url, version.as_deref(), total, &resp).await?;
            if resp.status() == 200 {
                return Ok(Outcome::Full(
                    fetch::read_all(&resp, "download", progress).await?,
                ));
            }
            check_range(&resp, table.end())?;
            let mut p =
                Progress::offset(progress, stop as u64, (stop + total - table.end()) as u64);
            let t = fetch::read_all(&resp, "download", &mut p).await?;
            if t.len() != total - table.end() {
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

    // 3. A full-size file with the table's absent rows zero, parsed as usual; then the
    //    table moves to its own buffer (which pages are later written into in place) and the
    //    other tensors are copied out, so the file buffer (and the 9 MB tokenizer text in it)
    //    can go.
    progress.report("parse", 0, None, true);
    let mut file = vec![0u8; total];
    file[..stop].copy_from_slice(&prefix[..stop]);
    drop(prefix);
    file[table.end()..].copy_from_slice(&tail);
    drop(tail);
    let file = GgufFile::parse(Bytes::from(file))?;
    let mut model = Model::from_gguf(&file)?;
    drop(header);
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
    let have_rows = (stop - table.offset) / table.row_bytes;
    present
        .iter_mut()
        .take(have_rows / s.page_rows)
        .for_each(|p| *p = true);
    stats.rows_total = table.rows;
    let store = Rc::new(RowStore {
        url: url.to_string(),
        version,
        total,
        table,
        page_rows: s.page_rows,
        cache: use_cache,
        present: RefCell::new(present),
        model: Arc::new(model),
        inner: RefCell::new(None),
        updating: Cell::new(false),
        stats: RefCell::new(stats),
    });

    // 4. Pages cached by earlier visits.
    if use_cache {
        restore_pages(&store).await;
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
        table: Table,
        stop: usize,
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
    let mut planned: Option<(GgufHeader, Option<(Table, usize)>)> = None;
    let mut ready_total: Option<u64> = None;
    progress.report("download", 0, None, true);
    while reader.next_into(&mut buf).await? {
        if planned.is_none() && buf.len() >= next_try.min(total) {
            match GgufHeader::parse(&buf, total) {
                Ok(h) => {
                    let p = plan(&h, prefetch_rows);
                    ready_total = p.map(|(t, stop)| (stop + total - t.end()) as u64);
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
        if let Some((_, Some((_, stop)))) = &planned {
            if buf.len() >= *stop {
                break;
            }
        }
    }
    match planned {
        Some((header, Some((table, stop)))) if buf.len() >= stop => {
            reader.cancel().await;
            buf.truncate(stop);
            Ok(Prefix::Planned {
                bytes: buf,
                header,
                table,
                stop,
            })
        }
        // No table to page (or the prefetch covers it): the whole file was read.
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

async fn restore_pages(store: &RowStore) {
    let Some(keys) = cache::keys().await else {
        return;
    };
    let prefix = cache::part_key(&store.url, &format!("rows-{}-", store.page_rows));
    let suffix = format!("-of-{}", store.total);
    let mut writes = Vec::new();
    for k in keys {
        let Some(page) = k
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(&suffix))
            .and_then(|p| p.parse::<usize>().ok())
        else {
            continue;
        };
        if page >= store.present.borrow().len() || store.present.borrow()[page] {
            continue;
        }
        let (start, end) = store.page_range(page, page);
        if let Some(entry) = cache::lookup(&k).await {
            if entry.data.length() as usize == end - start && entry.version == store.version {
                writes.push((page, entry.data.to_vec()));
            }
        }
    }
    if writes.is_empty() {
        return;
    }
    store.stats.borrow_mut().pages_from_cache += writes.len();
    // No backend yet: the rows go into the model's table.
    let writes: Vec<(usize, &[u8])> = writes.iter().map(|(p, b)| (*p, &b[..])).collect();
    let _ = store.apply(&writes);
}
