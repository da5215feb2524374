//! The exported `Aligner` class. Each method validates its JavaScript arguments, calls the
//! core and converts the result; nothing here knows how an encoder or an alignment works.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use bytes::Bytes;
use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect};
use serde::Serialize;
use tsify::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use xlalign_core::embed::{cosine, embed_texts, Prefix};
use xlalign_core::request::Recommendation;
use xlalign_core::{document, pipeline};
use xlalign_core::{Backend, BackendInfo, Model};

use crate::encoded::{self, Encoded, Slot};
use crate::engine::{self, Engine};
use crate::error::{Code, Result, WasmError};
use crate::fetch::Progress;
use crate::options::{self, AlignCall, EmbedOptions, LoadOptions};
use crate::progressive::{self, Outcome, ProgressiveBackend, Stats, Store};
use crate::source::{self, Source};

/// What a loaded aligner holds. Shared with running calls, so `dispose()` during a call
/// lets that call finish and frees the model afterwards.
pub(crate) struct Loaded {
    engine: Engine,
    /// The model as loaded; in progressive mode the row store holds the current one.
    model: Arc<Model>,
    store: Option<Rc<Store>>,
    info: BackendInfo,
    full_stats: Stats,
    /// States kept by `encode`, freed with the aligner.
    encodings: RefCell<Vec<Weak<Slot>>>,
}

// An aligner freed without `dispose()` (`free()`, or garbage collection) frees its
// encodings too, once no call holds it.
impl Drop for Loaded {
    fn drop(&mut self) {
        self.free_encodings();
    }
}

impl Loaded {
    fn model(&self) -> Arc<Model> {
        match &self.store {
            Some(s) => s.model(),
            None => self.model.clone(),
        }
    }

    /// Frees the states of every `Encoded` made by this aligner.
    fn free_encodings(&self) {
        for slot in self.encodings.take() {
            if let Some(s) = slot.upgrade() {
                s.borrow_mut().take();
            }
        }
    }

    /// Whether a sentence cosine is computed: when asked for (`asked`: the caller set
    /// `sentenceCosine`), or by default once every block is present; while the deeper
    /// blocks of a progressive load are still arriving, a call that did not ask leaves it
    /// out (`null`) rather than wait for them.
    pub(crate) fn cosine_now(&self, asked: bool, want: bool) -> bool {
        want && (asked
            || self
                .store
                .as_ref()
                .is_none_or(|s| s.blocks_present() >= s.layers_total()))
    }

    /// The pipeline on the current model (cheap: two handles).
    pub(crate) fn core(&self) -> pipeline::Aligner<Engine> {
        pipeline::Aligner::new(self.model(), self.engine.clone())
    }
}

/// `aligner.model`: facts about the loaded model.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    name: String,
    /// Width of the hidden states.
    hidden: usize,
    /// Transformer blocks (layers 0..=layers can be aligned with; 0 is the embeddings).
    layers: usize,
    heads: usize,
    vocab: usize,
    /// Longest input in tokens; longer texts are encoded in overlapping windows.
    max_positions: usize,
    weight_type: String,
    file_bytes: f64,
    defaults: ModelInfoDefaults,
    /// The model's recommendation in the options' terms, as unset options of `align` are
    /// resolved from it (layer, and the method with its threshold and temperature).
    recommendation: Recommendation,
}

/// What the model file recommends; unset options of `align` take these.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct ModelInfoDefaults {
    align_layer: usize,
    align_method: String,
    align_threshold: f32,
    passage_prefix: String,
    query_prefix: String,
}

/// The entry of `alignBatch`'s result for a pair that could not be aligned.
#[derive(Serialize, Tsify)]
pub struct PairError {
    pub error: PairErrorDetail,
}

#[derive(Serialize, Tsify)]
pub struct PairErrorDetail {
    pub message: String,
    // tsify names a field's type by its Rust name, not by the `rename` it was declared with.
    #[tsify(type = "ErrorCode")]
    pub code: Code,
}

/// A loaded model plus the backend that runs it.
#[wasm_bindgen]
pub struct Aligner {
    inner: RefCell<Option<Rc<Loaded>>>,
}

#[wasm_bindgen]
impl Aligner {
    /// Loads a model from a URL or from its bytes.
    ///
    /// Options: `backend` (`"auto"` | `"webgpu"` | `"cpu"`), `onProgress({loaded, total, phase})`,
    /// `signal` (AbortSignal), `cache` (default true), `sha256` (expected hex digest),
    /// `progressive`, `prefetchRows`, `pageRows`.
    #[wasm_bindgen(unchecked_return_type = "Aligner", js_name = load)]
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "string | URL | Uint8Array | ArrayBuffer")]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
    ) -> std::result::Result<Aligner, JsValue> {
        crate::init();
        Ok(Self::load_inner(source, options).await?)
    }

    async fn load_inner(source: JsValue, options: JsValue) -> Result<Aligner> {
        let (opts, live) =
            options::parse::<LoadOptions>(&options, "load options", &["onProgress", "signal"])?;
        let mut live = live.into_iter();
        let mut progress = Progress::new(options::function(live.next().unwrap(), "onProgress")?);
        let signal = options::signal(live.next().unwrap())?;
        let sha256 = opts
            .sha256
            .as_deref()
            .map(source::normalize_sha256)
            .transpose()?;
        options::check_signal(&signal)?;

        let settings = progressive::Settings {
            prefetch_rows: opts
                .prefetch_rows
                .map_or(progressive::DEFAULT_PREFETCH_ROWS, |n| n as usize),
            page_rows: match opts.page_rows {
                None => progressive::DEFAULT_PAGE_ROWS,
                Some(n) if (1..=1 << 20).contains(&n) => n as usize,
                Some(n) => {
                    return Err(WasmError::input(format!(
                        "pageRows must be from 1 to 1048576, got {n}"
                    )))
                }
            },
            cache: opts.cache,
            idle_start_ms: match opts.idle_start_ms {
                None => Some(crate::fill::IDLE_START_MS),
                Some(ms) if ms < 0 => None,
                Some(ms) => Some(ms),
            },
        };
        let outcome = match Source::from_js(&source)? {
            Source::Bytes(b) => {
                if let Some(want) = &sha256 {
                    source::verify(&b, want, &mut progress).await?;
                }
                Outcome::Full(b)
            }
            Source::Url(url) if opts.progressive => {
                if sha256.is_some() {
                    return Err(WasmError::input(
                        "sha256 needs the whole file, so it cannot be combined with progressive loading",
                    ));
                }
                let url = source::absolute_url(&url)?;
                progressive::load(&url, &settings, &mut progress, signal.as_ref()).await?
            }
            Source::Url(url) => {
                let url = source::absolute_url(&url)?;
                Outcome::Full(
                    source::load_url(
                        &url,
                        opts.cache,
                        sha256.as_deref(),
                        &mut progress,
                        signal.as_ref(),
                    )
                    .await?,
                )
            }
        };
        options::check_signal(&signal)?;

        let loaded = match outcome {
            Outcome::Full(bytes) => {
                let n = bytes.len() as u64;
                progress.report("parse", 0, Some(n), true);
                let model = Arc::new(Model::from_bytes(Bytes::from(bytes))?);
                progress.report("backend", 0, None, true);
                let backend = engine::create(model.clone(), opts.backend).await?;
                let info = backend.info();
                let full_stats = Stats {
                    mode: "full".into(),
                    ready_bytes: n,
                    rows_present: model.config.vocab,
                    rows_total: model.config.vocab,
                    layers_present: model.config.layers,
                    layers_total: model.config.layers,
                    ..Default::default()
                };
                progress.report("ready", n, Some(n), true);
                Loaded {
                    engine: Engine::Direct(Rc::new(backend)),
                    model,
                    store: None,
                    info,
                    full_stats,
                    encodings: RefCell::default(),
                }
            }
            Outcome::Ready(store) => {
                progress.report("backend", 0, None, true);
                let model = store.model();
                store.set_backend(engine::create(model.clone(), opts.backend).await?);
                // The rows of the model's prefixes are in every encoder input.
                let mut ids = Vec::new();
                for p in [&model.defaults.passage_prefix, &model.defaults.query_prefix] {
                    ids.extend(model.tokenizer.encode("", p)?.ids);
                }
                store.ensure(&ids).await?;
                // The deeper blocks, then the cache fill, in the background.
                crate::fill::start(&store);
                let engine = Engine::Progressive(ProgressiveBackend(store.clone()));
                let info = engine.info();
                let n = store.stats().ready_bytes;
                progress.report("ready", n, Some(n), true);
                Loaded {
                    engine,
                    model,
                    store: Some(store),
                    info,
                    full_stats: Stats::default(),
                    encodings: RefCell::default(),
                }
            }
        };
        Ok(Aligner {
            inner: RefCell::new(Some(Rc::new(loaded))),
        })
    }

    /// How the model was loaded: `{ mode: "full" | "progressive", readyBytes, networkBytes,
    /// requests, rowsPresent, rowsTotal, layersPresent, layersTotal, pageRows, pagesFetched,
    /// pagesFromCache }`.
    #[wasm_bindgen(getter, unchecked_return_type = "LoadingInfo")]
    pub fn loading(&self) -> std::result::Result<JsValue, JsValue> {
        let l = self.loaded()?;
        let s = match &l.store {
            Some(store) => store.stats(),
            None => l.full_stats.clone(),
        };
        Ok(to_js(&s)?)
    }

    /// Resolves to `loading` once every block of the model is present (at once after a
    /// full load; after a progressive one, once the deeper blocks have arrived): from then
    /// on calls never wait for anything but the rows of their text, and `align` includes
    /// the sentence cosine by default. Rejects if a block cannot be fetched.
    #[wasm_bindgen(js_name = whenLoaded, unchecked_return_type = "Promise<LoadingInfo>")]
    pub fn when_loaded(&self) -> Promise {
        self.loading_after(|store| async move {
            store.want_all();
            store.ensure_blocks(store.layers_total()).await
        })
    }

    /// Resolves to the loading counters once the whole model file is here and kept in the
    /// Cache API, so that a later visit loads without the network (at once after a full
    /// load). After `progressive: true` that is when the background loading has brought the
    /// rest of the table; rejects with `input` under `cache: false` (rows then stay on
    /// demand) and with `network` if the background loading stopped.
    #[wasm_bindgen(js_name = whenStored, unchecked_return_type = "Promise<LoadingInfo>")]
    pub fn when_stored(&self) -> Promise {
        self.loading_after(|store| async move { store.ensure_stored().await })
    }

    fn loaded(&self) -> Result<Rc<Loaded>> {
        self.inner.borrow().clone().ok_or_else(|| {
            WasmError::new(
                Code::Disposed,
                "this aligner was disposed; load the model again",
            )
        })
    }

    /// `{ kind: "cpu" | "webgpu", device, reason }`: what runs the encoder and why.
    #[wasm_bindgen(getter, unchecked_return_type = "BackendInfo")]
    pub fn backend(&self) -> std::result::Result<JsValue, JsValue> {
        let l = self.loaded()?;
        Ok(to_js(&l.info)?)
    }

    /// Facts about the loaded model (`name`, `hidden`, `layers`, `vocab`, `maxPositions`,
    /// `weightType`, `fileBytes`, `defaults`).
    #[wasm_bindgen(getter, unchecked_return_type = "ModelInfo")]
    pub fn model(&self) -> std::result::Result<JsValue, JsValue> {
        let l = self.loaded()?;
        let m = &l.model();
        let d = &m.defaults;
        Ok(to_js(&ModelInfo {
            name: m.name.clone(),
            hidden: m.config.hidden,
            layers: m.config.layers,
            heads: m.config.heads,
            vocab: m.config.vocab,
            max_positions: m.config.max_positions,
            weight_type: m.weight_type.name().to_string(),
            file_bytes: m.file_len as f64,
            defaults: ModelInfoDefaults {
                align_layer: d.align_layer,
                align_method: d.align_method.clone(),
                align_threshold: d.align_threshold,
                passage_prefix: d.passage_prefix.clone(),
                query_prefix: d.query_prefix.clone(),
            },
            recommendation: Recommendation::of(m).map_err(WasmError::from)?,
        })?)
    }

    /// The subword tokens the encoder sees for `text` (with `<s>`, `</s>` and the prefix):
    /// `{ ids: Uint32Array, tokens: string[] }`. Options as for `embed`.
    #[wasm_bindgen(unchecked_return_type = "{ ids: Uint32Array; tokens: string[] }")]
    pub fn tokenize(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "EmbedOptions")] options: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        let l = self.loaded()?;
        let text = text
            .as_string()
            .ok_or_else(|| WasmError::input("tokenize: the text must be a string"))?;
        xlalign_core::embed::check_text(&text).map_err(WasmError::from)?;
        let (prefix, _) = embed_options(&options)?;
        let model = &l.model();
        let t = model
            .tokenizer
            .encode(&text, prefix.text(model))
            .map_err(WasmError::from)?;
        let o = Object::new();
        let _ = Reflect::set(&o, &"ids".into(), &js_sys::Uint32Array::from(&t.ids[..]));
        let tokens: Array = t.tokens.iter().map(|s| JsValue::from_str(s)).collect();
        let _ = Reflect::set(&o, &"tokens".into(), &tokens);
        Ok(o.into())
    }

    /// Sentence embeddings (pooled, L2-normalised), one `Float32Array` per text.
    /// Options: `prefix` (`"passage"` default, `"query"`, `"none"`), `signal`. Texts go to
    /// the encoder in groups of 32; between groups the call yields and honours `signal`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array[]>")]
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] texts: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "EmbedOptions")] options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let texts = strings(&texts, "texts")?;
            let (prefix, signal) = embed_options(&options)?;
            Ok((l, texts, prefix, signal))
        })();
        future_to_promise(async move {
            let (l, texts, prefix, signal) = prepared?;
            let out = Array::new();
            for (i, group) in texts.chunks(EMBED_GROUP).enumerate() {
                if i > 0 {
                    yield_now().await;
                }
                options::check_signal(&signal)?;
                for v in embed_all(&l, group, prefix).await? {
                    out.push(&Float32Array::from(&v[..]));
                }
            }
            Ok(out.into())
        })
    }

    /// Cosine similarity of the two texts' sentence embeddings. Options as for `embed`.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn similarity(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] a: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] b: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "EmbedOptions")] options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let a = a
                .as_string()
                .ok_or_else(|| WasmError::input("similarity: the first text must be a string"))?;
            let b = b
                .as_string()
                .ok_or_else(|| WasmError::input("similarity: the second text must be a string"))?;
            let (prefix, signal) = embed_options(&options)?;
            Ok((l, vec![a, b], prefix, signal))
        })();
        future_to_promise(async move {
            let (l, texts, prefix, signal) = prepared?;
            options::check_signal(&signal)?;
            let v = embed_all(&l, &texts, prefix).await?;
            Ok(JsValue::from_f64(cosine(&v[0], &v[1]) as f64))
        })
    }

    /// Aligns the words of two sentences. Options (all optional): `method` (`"softmax"`,
    /// `"entmax"`, `"argmax"`, `"itermax"`, `"match"`), `threshold`, `temperature`,
    /// `iterations`, `alpha`, `distortion`, `direction`, `level`, `layer`, `pretokenized`,
    /// `sentenceCosine` (default true; see below), `words`, `signal`. Unset extraction options
    /// take the model's recommendation. After a progressive load, until every block is
    /// present (`whenLoaded()`), the sentence cosine is left out (`null`) unless
    /// `sentenceCosine` is set, so that the first alignment need not wait for the deeper
    /// blocks; set to true, the call waits for them.
    #[wasm_bindgen(unchecked_return_type = "Promise<PairAlignment>")]
    pub fn align(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] src: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] tgt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AlignOptions")] options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let (src, tgt) = sentences(&src, &tgt, "align")?;
            let mut call = AlignCall::parse(&options, &l.core(), false)?;
            let asked = options::is_set(&options, "sentenceCosine");
            call.encode.sentence_cosine = l.cosine_now(asked, call.encode.sentence_cosine);
            Ok((l, src, tgt, call))
        })();
        future_to_promise(async move {
            let (l, src, tgt, call) = prepared?;
            options::check_signal(&call.signal)?;
            // The two steps of `encode` + `extract`, so those give exactly this result. (The
            // core's single-pass device alignment would keep the states on the GPU, rounding
            // differently from an extraction of the states read back.)
            let pair = encoded::encode_pair(&l.core(), &src, &tgt, &call.encode).await?;
            options::check_signal(&call.signal)?;
            let r = encoded::extract_pair(&l.core(), &pair, &call.align).await?;
            Ok(to_js(&r)?)
        })
    }

    /// Encodes a pair once for many extractions: resolves to an `Encoded` whose
    /// `extract(options)` gives what `align` gives with the same options, without running the
    /// encoder again. Options: `layer`, `pretokenized`, `sentenceCosine` (default true),
    /// `words`, `signal`. Free the states with `dispose()` (disposing the aligner frees all).
    #[wasm_bindgen(unchecked_return_type = "Promise<Encoded>")]
    pub fn encode(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] src: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] tgt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "EncodeOptions & Cancellable")]
        options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let (src, tgt) = sentences(&src, &tgt, "encode")?;
            let mut call = options::encode_call(&options, &l.core())?;
            let asked = options::is_set(&options, "sentenceCosine");
            call.options.sentence_cosine = l.cosine_now(asked, call.options.sentence_cosine);
            Ok((l, src, tgt, call))
        })();
        future_to_promise(async move {
            let (l, src, tgt, call) = prepared?;
            options::check_signal(&call.signal)?;
            let pair = encoded::encode_pair(&l.core(), &src, &tgt, &call.options).await?;
            let (enc, slot) = Encoded::new(pair, &l);
            let mut kept = l.encodings.borrow_mut();
            kept.retain(|s| s.strong_count() > 0);
            kept.push(slot);
            Ok(enc.into())
        })
    }

    /// Aligns many pairs (`[src, tgt]` arrays or `{src, tgt}` objects), `batchSize` pairs per
    /// encoder pass (default 8). Resolves to one entry per pair: a `PairAlignment`, or
    /// `{ error: { message, code } }` for a pair that could not be aligned (the others are
    /// unaffected). `onProgress({ done, total, offset, results })` follows each batch with
    /// that batch's entries (`results[i]` is pair `offset + i`), so a page can show rows as
    /// they arrive; a first call has `done: 0` and no results. Between batches the call
    /// yields to the event loop and honours `signal`.
    #[wasm_bindgen(js_name = alignBatch, unchecked_return_type = "Promise<Array<PairAlignment | PairError>>")]
    pub fn align_batch(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "Array<[string, string] | { src: string; tgt: string }>"
        )]
        pairs: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AlignBatchOptions")] options: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "(p: BatchProgress) => void")]
        on_progress: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let pairs = parse_pairs(&pairs)?;
            let mut call = AlignCall::parse(&options, &l.core(), true)?;
            let asked = options::is_set(&options, "sentenceCosine");
            call.encode.sentence_cosine = l.cosine_now(asked, call.encode.sentence_cosine);
            let on_progress = options::function(on_progress, "onProgress")?;
            Ok((l, pairs, call, on_progress))
        })();
        future_to_promise(async move {
            let (l, pairs, call, on_progress) = prepared?;
            call.align.validate().map_err(WasmError::from)?;
            let out = Array::new();
            let total = pairs.len();
            report_batch(&on_progress, 0, total, 0, &Array::new());
            for chunk in pairs.chunks(call.batch_size) {
                options::check_signal(&call.signal)?;
                let refs: Vec<(&str, &str)> = chunk
                    .iter()
                    .map(|(s, t)| (s.as_str(), t.as_str()))
                    .collect();
                // A fresh pipeline per batch: progressive loading may have swapped the model.
                let offset = out.length() as usize;
                let done = Array::new();
                for r in l
                    .core()
                    .align_batch(&refs, &call.encode, &call.align)
                    .await
                    .map_err(WasmError::from)?
                {
                    let v = match r {
                        Ok(a) => to_js(&a)?,
                        Err(e) => pair_error(WasmError::from(e))?,
                    };
                    out.push(&v);
                    done.push(&v);
                }
                report_batch(&on_progress, out.length() as usize, total, offset, &done);
                if out.length() as usize != total {
                    // Lets the page (or a worker's message handler) run: progress paints,
                    // and an abort sent meanwhile is seen before the next batch.
                    yield_now().await;
                }
            }
            Ok(out.into())
        })
    }

    /// Document mode: splits two texts into sentences, pairs them (1–1, 1–2, 2–1, or a
    /// sentence with no counterpart) by their sentence embeddings, and aligns the words of
    /// each pair with `options` (those of `align`). Resolves to a `DocumentAlignment`; a
    /// pair whose words could not be aligned carries an `error` instead of `words`. Yields to
    /// the event loop between encoder calls and honours `signal` there.
    #[wasm_bindgen(js_name = alignDocument, unchecked_return_type = "Promise<DocumentAlignment>")]
    pub fn align_document(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] src: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] tgt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AlignOptions")] options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let l = self.loaded()?;
            let (src, tgt) = texts(&src, &tgt, "alignDocument")?;
            let call = AlignCall::parse(&options, &l.core(), false)?;
            Ok((l, src, tgt, call))
        })();
        future_to_promise(async move {
            let (l, src, tgt, call) = prepared?;
            options::check_signal(&call.signal)?;
            let aborted = std::cell::Cell::new(false);
            let pause = || async {
                yield_now().await;
                if options::check_signal(&call.signal).is_err() {
                    aborted.set(true);
                    return Err(xlalign_core::Error::Input("aborted".into()));
                }
                Ok(())
            };
            let r =
                document::align_document(&l.core(), &src, &tgt, &call.encode, &call.align, pause)
                    .await;
            if aborted.get() {
                return Err(WasmError::cancelled().into());
            }
            Ok(to_js(&r.map_err(WasmError::from)?)?)
        })
    }

    /// Frees the model, the backend and the states of every `Encoded` made by `encode`.
    /// Calls already running finish first; later calls throw.
    pub fn dispose(&self) {
        if let Some(l) = self.inner.borrow_mut().take() {
            l.free_encodings();
        }
    }
}

async fn embed_all(l: &Loaded, texts: &[String], prefix: Prefix) -> Result<Vec<Vec<f32>>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = embed_texts(&l.model(), &l.engine, &refs, prefix, None).await?;
    Ok(out.into_iter().map(|e| e.embedding).collect())
}

/// Texts per encoder call in `embed`: large enough to batch, small enough that a long list
/// can be cancelled part-way.
const EMBED_GROUP: usize = 32;

fn embed_options(options: &JsValue) -> Result<(Prefix, Option<web_sys::AbortSignal>)> {
    let (o, live) = options::parse::<EmbedOptions>(options, "embed options", &["signal"])?;
    let signal = options::signal(live.into_iter().next().unwrap_or_default())?;
    let prefix = match o.prefix.as_deref() {
        None => Prefix::Passage,
        Some(p) => Prefix::parse(p)?,
    };
    Ok((prefix, signal))
}

/// The source and target sentences of `align` and `encode`.
fn sentences(src: &JsValue, tgt: &JsValue, call: &str) -> Result<(String, String)> {
    two_strings(src, tgt, call, "sentence")
}

fn texts(src: &JsValue, tgt: &JsValue, call: &str) -> Result<(String, String)> {
    two_strings(src, tgt, call, "text")
}

fn two_strings(src: &JsValue, tgt: &JsValue, call: &str, what: &str) -> Result<(String, String)> {
    let text = |v: &JsValue, side: &str| {
        v.as_string()
            .ok_or_else(|| WasmError::input(format!("{call}: the {side} {what} must be a string")))
    };
    Ok((text(src, "source")?, text(tgt, "target")?))
}

/// An array of strings, with the offending index named when it is not one.
pub(crate) fn strings(v: &JsValue, what: &str) -> Result<Vec<String>> {
    if !Array::is_array(v) {
        return Err(WasmError::input(format!(
            "{what} must be an array of strings"
        )));
    }
    Array::from(v)
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_string()
                .ok_or_else(|| WasmError::input(format!("{what}[{i}] is not a string")))
        })
        .collect()
}

pub(crate) fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue> {
    // Maps as plain objects, not `Map`s, so results print and JSON.stringify naturally.
    let s = serde_wasm_bindgen::Serializer::new()
        .serialize_maps_as_objects(true)
        .serialize_missing_as_null(true);
    v.serialize(&s)
        .map_err(|e| WasmError::new(Code::Backend, format!("cannot convert the result: {e}")))
}

fn parse_pairs(v: &JsValue) -> Result<Vec<(String, String)>> {
    if !Array::is_array(v) {
        return Err(WasmError::input(
            "pairs must be an array of [source, target] pairs",
        ));
    }
    Array::from(v)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (s, t) = if Array::is_array(&p) {
                let a = Array::from(&p);
                if a.length() != 2 {
                    return Err(WasmError::input(format!(
                        "pairs[{i}] must have two sentences, has {}",
                        a.length()
                    )));
                }
                (a.get(0), a.get(1))
            } else if p.is_object() {
                (
                    Reflect::get(&p, &"src".into()).unwrap_or_default(),
                    Reflect::get(&p, &"tgt".into()).unwrap_or_default(),
                )
            } else {
                return Err(WasmError::input(format!(
                    "pairs[{i}] must be [source, target] or {{src, tgt}}"
                )));
            };
            match (s.as_string(), t.as_string()) {
                (Some(s), Some(t)) => Ok((s, t)),
                _ => Err(WasmError::input(format!(
                    "pairs[{i}]: source and target must be strings"
                ))),
            }
        })
        .collect()
}

fn pair_error(e: WasmError) -> Result<JsValue> {
    to_js(&PairError {
        error: PairErrorDetail {
            message: e.message,
            code: e.code,
        },
    })
}

// `alignBatch`'s progress object: it carries result values (JsValues already converted for
// the batch's result), so it is declared here rather than derived by tsify.
#[wasm_bindgen(typescript_custom_section)]
const BATCH_PROGRESS_TS: &'static str = r#"
/** `alignBatch` progress: `done` of `total` pairs are aligned; `results` are the entries of pairs `offset` to `offset + results.length - 1`, just finished (with a pool of workers, parts may finish out of order). */
export interface BatchProgress {
  done: number;
  total: number;
  offset: number;
  results: Array<PairAlignment | PairError>;
}
"#;

/// Calls `onProgress({ done, total, offset, results })`: `results` are the entries of pairs
/// `offset..offset + results.length` that have just been aligned.
fn report_batch(cb: &Option<Function>, done: usize, total: usize, offset: usize, results: &Array) {
    if let Some(cb) = cb {
        let o = Object::new();
        let _ = Reflect::set(&o, &"done".into(), &(done as u32).into());
        let _ = Reflect::set(&o, &"total".into(), &(total as u32).into());
        let _ = Reflect::set(&o, &"offset".into(), &(offset as u32).into());
        let _ = Reflect::set(&o, &"results".into(), results);
        if let Err(e) = cb.call1(&JsValue::NULL, &o) {
            web_sys::console::warn_1(
                &format!(
                    "xlalign: onProgress threw: {}",
                    crate::error::describe_js(&e)
                )
                .into(),
            );
        }
    }
}

/// A macrotask turn (`setTimeout(0)`), so events queued meanwhile are handled.
pub(crate) async fn yield_now() {
    sleep_ms(0).await
}

/// A timer turn of `ms` milliseconds (`setTimeout`; at once where there is none).
pub(crate) async fn sleep_ms(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&JsValue::NULL, &resolve, &ms.into());
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(p).await;
}

impl Aligner {
    /// `loading` once `wait` has seen the progressive store reach a state (at once after a
    /// full load, which has everything).
    fn loading_after<F, Fut>(&self, wait: F) -> Promise
    where
        F: FnOnce(Rc<Store>) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<()>> + 'static,
    {
        let l = self.loaded();
        future_to_promise(async move {
            let l = l?;
            let s = match &l.store {
                Some(store) => {
                    wait(store.clone()).await?;
                    store.stats()
                }
                None => l.full_stats.clone(),
            };
            Ok(to_js(&s)?)
        })
    }
}
