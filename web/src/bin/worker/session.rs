//! The worker's model session: the loaded model, the backend that runs it, and the hidden
//! states of the pairs aligned last, so a change of method, threshold, direction or level
//! re-runs only the extraction.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use xlalign_core::align::AlignOptions;
use xlalign_core::embed::{embed_texts, Prefix};
use xlalign_core::pipeline::{Aligner, EncodeOptions, EncodedPair, PairAlignment};
use xlalign_core::{Backend, Model};
use xlalign_gpu::{AnyBackend, BackendChoice};
use xlalign_wasm::fetch::Progress;
use xlalign_wasm::source;

use xlalign_web::document::{self, Bead};
use xlalign_web::protocol::{
    BackendView, BatchItem, DocumentPair, DocumentResult, ModelSummary, Timing,
};
use xlalign_web::settings::Settings;

/// Encoded pairs kept for re-extraction: the current pair plus a few recent ones, so going
/// back to an earlier example is instant too.
const CACHE_PAIRS: usize = 6;

struct Cached {
    src: String,
    tgt: String,
    layer: usize,
    pair: Rc<EncodedPair>,
}

pub struct Session {
    aligner: Aligner<AnyBackend>,
    view: BackendView,
    cache: RefCell<Vec<Cached>>,
}

/// Milliseconds since the worker started (for timings and pairs/s).
pub fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| {
            Reflect::get(&p, &"now".into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .map(|f| (p, f))
        })
        .and_then(|(p, f)| f.call0(&p).ok())
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

/// Whether the browser says it has no network (`navigator.onLine` in the worker).
fn browser_offline() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"onLine".into()))
        .ok()
        .and_then(|v| v.as_bool())
        == Some(false)
}

/// Opens a backend through `xlalign-gpu`'s selection (WebGPU when a hardware adapter exists,
/// else the CPU, with the reason).
async fn open_backend(
    model: Arc<Model>,
    asked: BackendChoice,
) -> Result<(AnyBackend, BackendView), String> {
    let engine = xlalign_gpu::select(model, asked).await.map_err(|e| {
        let msg = e.detail();
        if asked == BackendChoice::Gpu {
            format!("{msg} (choose Automatic or CPU instead)")
        } else {
            msg
        }
    })?;
    let info = engine.info();
    let view = BackendView {
        kind: info.kind,
        device: info.device,
        reason: info.reason,
        asked,
    };
    Ok((engine, view))
}

impl Session {
    /// Downloads the model (or reads it from the Cache API, checked by size and SHA-256),
    /// parses it and opens the backend. `progress(phase, loaded, total)` follows each step.
    pub async fn load(
        url: &str,
        asked: BackendChoice,
        progress: impl Fn(&str, f64, Option<f64>) + 'static,
    ) -> Result<(Session, ModelSummary), String> {
        let url = source::absolute_url(url).map_err(|e| e.message)?;
        let progress = Rc::new(progress);
        let p = progress.clone();
        let cb = Closure::<dyn Fn(JsValue)>::new(move |o: JsValue| {
            let get = |k: &str| Reflect::get(&o, &k.into()).ok();
            let phase = get("phase").and_then(|v| v.as_string()).unwrap_or_default();
            let loaded = get("loaded").and_then(|v| v.as_f64()).unwrap_or(0.0);
            let total = get("total").and_then(|v| v.as_f64());
            p(&phase, loaded, total);
        });
        let mut reporter = Progress::new(Some(cb.as_ref().unchecked_ref::<Function>().clone()));
        let bytes = source::load_url(&url, true, None, &mut reporter, None).await.map_err(|e| {
            if browser_offline() {
                format!("{} — this browser is offline and the model is not in its cache yet: connect to the internet and reload (once downloaded, the model is kept for offline use)", e.message)
            } else {
                format!("{} — check that the model file is served next to the page (run scripts/setup.sh), then reload", e.message)
            }
        })?;
        drop(cb);
        let n = bytes.len() as f64;
        progress("parse", 0.0, Some(n));
        let model = Arc::new(
            Model::from_bytes(Bytes::from(bytes))
                .map_err(|e| format!("the model file cannot be used: {e} (download it again: clear the site data and reload)"))?,
        );
        progress("backend", 0.0, None);
        let (engine, view) = open_backend(model.clone(), asked).await?;
        progress("ready", n, Some(n));
        let aligner = Aligner::new(model, engine);
        let summary = ModelSummary {
            name: aligner.model.name.clone(),
            file_bytes: aligner.model.file_len as u64,
            weight_type: aligner.model.weight_type.name().to_string(),
            defaults: aligner
                .recommendation()
                .map_err(|e| format!("the model file cannot be used: {e}"))?,
        };
        Ok((
            Session {
                aligner,
                view,
                cache: RefCell::new(Vec::new()),
            },
            summary,
        ))
    }

    pub fn view(&self) -> &BackendView {
        &self.view
    }

    /// The same model on another backend. Cached hidden states are dropped: two backends
    /// round differently, and a result must not mix them.
    pub async fn with_backend(&self, asked: BackendChoice) -> Result<Session, String> {
        let (engine, view) = open_backend(self.aligner.model.clone(), asked).await?;
        Ok(Session {
            aligner: Aligner::new(self.aligner.model.clone(), engine),
            view,
            cache: RefCell::new(Vec::new()),
        })
    }

    /// The settings resolved by the core (the pooled-embedding cosine is on by default).
    fn options(&self, settings: &Settings) -> Result<(EncodeOptions, AlignOptions), String> {
        let rec = self.aligner.recommendation().map_err(user_error)?;
        settings.request().resolve(&rec).map_err(user_error)
    }

    /// One pair: hidden states from the cache when the texts and the layer are unchanged.
    pub async fn align(
        &self,
        src: &str,
        tgt: &str,
        settings: &Settings,
    ) -> Result<(PairAlignment, Timing), String> {
        let (enc, opts) = self.options(settings)?;
        let layer = enc.layer.expect("set by options");
        let hit = {
            let mut cache = self.cache.borrow_mut();
            let pos = cache
                .iter()
                .position(|c| c.layer == layer && c.src == src && c.tgt == tgt);
            // Most recent last, so the oldest entry is the one dropped.
            pos.map(|i| {
                let c = cache.remove(i);
                let pair = c.pair.clone();
                cache.push(c);
                pair
            })
        };
        let mut timing = Timing::default();
        let pair = match hit {
            Some(p) => p,
            None => {
                let t0 = now_ms();
                let encoded = self
                    .aligner
                    .encode_pairs(&[(src, tgt)], &enc)
                    .await
                    .map_err(user_error)?;
                let pair = Rc::new(
                    encoded
                        .into_iter()
                        .next()
                        .expect("one result per pair")
                        .map_err(user_error)?,
                );
                timing.encoded = true;
                timing.encode_ms = now_ms() - t0;
                let mut cache = self.cache.borrow_mut();
                if cache.len() >= CACHE_PAIRS {
                    cache.remove(0);
                }
                cache.push(Cached {
                    src: src.into(),
                    tgt: tgt.into(),
                    layer,
                    pair: pair.clone(),
                });
                pair
            }
        };
        let t0 = now_ms();
        let result = self.aligner.extract(&pair, &opts).map_err(user_error)?;
        timing.extract_ms = now_ms() - t0;
        Ok((result, timing))
    }

    /// A chunk of a batch: one forward pass, one result per pair.
    pub async fn align_chunk(
        &self,
        pairs: &[(String, String)],
        settings: &Settings,
    ) -> Result<Vec<BatchItem>, String> {
        let (enc, opts) = self.options(settings)?;
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        let results = self
            .aligner
            .align_batch(&refs, &enc, &opts)
            .await
            .map_err(user_error)?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(mut a) => {
                    // The table and the exports do not use the matrix; thousands of them would.
                    a.word_similarity = Vec::new();
                    BatchItem::Ok(a)
                }
                Err(e) => BatchItem::Err(user_error(e)),
            })
            .collect())
    }

    /// Document mode: sentences, their pairing, and word links inside each pair.
    pub async fn align_document(
        &self,
        src: &str,
        tgt: &str,
        settings: &Settings,
    ) -> Result<DocumentResult, String> {
        let ss = document::split_sentences(src);
        let ts = document::split_sentences(tgt);
        for (name, s) in [("source", &ss), ("target", &ts)] {
            if s.is_empty() {
                return Err(format!("the {name} text has no sentences"));
            }
            if s.len() > document::MAX_SENTENCES {
                return Err(format!(
                    "the {name} text has {} sentences; document mode takes up to {} (split the text)",
                    s.len(),
                    document::MAX_SENTENCES
                ));
            }
        }
        // Embeddings of every sentence and of every two neighbours (for 1–2 and 2–1 beads).
        let groups = |s: &[String]| -> Vec<String> {
            let mut g: Vec<String> = s.to_vec();
            g.extend(s.windows(2).map(document::join));
            g
        };
        let (sg, tg) = (groups(&ss), groups(&ts));
        let texts: Vec<&str> = sg.iter().chain(&tg).map(String::as_str).collect();
        let model = &self.aligner.model;
        let mut vecs = Vec::with_capacity(texts.len());
        // In groups, yielding between them, so messages (a cancel, a new pair) are not stuck
        // behind a long document.
        for chunk in texts.chunks(32) {
            let e = embed_texts(model, &self.aligner.backend, chunk, Prefix::Passage, None)
                .await
                .map_err(user_error)?;
            vecs.extend(e.into_iter().map(|e| e.embedding));
            crate::yield_now().await;
        }
        let (sv, tv) = vecs.split_at(sg.len());
        let index =
            |n: usize, r: &std::ops::Range<usize>| if r.len() == 1 { r.start } else { n + r.start };
        let beads = document::align_sentences(ss.len(), ts.len(), |s, t| {
            dot(&sv[index(ss.len(), &s)], &tv[index(ts.len(), &t)])
        });
        let matched: Vec<&Bead> = beads
            .iter()
            .filter(|b| !b.src.is_empty() && !b.tgt.is_empty())
            .collect();
        let texts: Vec<(String, String)> = matched
            .iter()
            .map(|b| {
                (
                    document::join(&ss[b.src.clone()]),
                    document::join(&ts[b.tgt.clone()]),
                )
            })
            .collect();
        let mut words = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(8) {
            words.extend(self.align_chunk(chunk, settings).await?);
            crate::yield_now().await;
        }
        let mut words = words.into_iter();
        let pairs = beads
            .iter()
            .map(|b| DocumentPair {
                src: b.src.clone().collect(),
                tgt: b.tgt.clone().collect(),
                score: b.score,
                words: if b.src.is_empty() || b.tgt.is_empty() {
                    None
                } else {
                    words.next()
                },
            })
            .collect();
        Ok(DocumentResult {
            src_sentences: ss,
            tgt_sentences: ts,
            pairs,
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Core errors as sentences for the page (the error's kind is not news).
fn user_error(e: xlalign_core::Error) -> String {
    let s = e.detail();
    if matches!(e, xlalign_core::Error::Backend(_)) {
        format!("{s} — the compute backend failed; switch to the CPU backend and try again")
    } else {
        s
    }
}
