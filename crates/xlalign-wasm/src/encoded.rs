//! Encode once, extract many: the exported `Encoded` class holds one pair's hidden states
//! (the core's [`EncodedPair`]) so that another method, threshold or direction re-runs only
//! the extraction, never the encoder.
//!
//! `Aligner.align` is these same two steps ([`encode_pair`], then [`extract_pair`]), so
//! `encode(src, tgt, e).extract(x)` gives exactly `align(src, tgt, { ...e, ...x })` on every
//! backend: on WebGPU the links are extracted on the device from the states read back,
//! for both.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use xlalign_core::align::{AlignOptions, Word};
use xlalign_core::pipeline::{self, EncodeOptions, EncodedPair, PairAlignment};

use crate::aligner::{to_js, Loaded};
use crate::engine::Engine;
use crate::error::{Code, Result, WasmError};
use crate::options;

/// An encoding's states, emptied by `Encoded.dispose()` or by disposing its aligner.
pub(crate) type Slot = RefCell<Option<Rc<EncodedPair>>>;

/// Tokenises and encodes one pair (one forward pass for both sides).
pub(crate) async fn encode_pair(
    core: &pipeline::Aligner<Engine>,
    src: &str,
    tgt: &str,
    opts: &EncodeOptions,
) -> Result<EncodedPair> {
    core.encode_pairs(&[(src, tgt)], opts)
        .await?
        .pop()
        .expect("one result per pair")
        .map_err(WasmError::from)
}

/// Links and scores of an encoded pair (on the device when the backend extracts there).
pub(crate) async fn extract_pair(
    core: &pipeline::Aligner<Engine>,
    pair: &EncodedPair,
    opts: &AlignOptions,
) -> Result<PairAlignment> {
    core.extract_batch(&[pair], opts)
        .await?
        .pop()
        .expect("one result per pair")
        .map_err(WasmError::from)
}

/// What an encoding tells without extracting (`Encoded.toJSON()`; the getters of `Encoded`
/// and the properties of `createAligner`'s encodings).
#[derive(Clone, Debug, Serialize, tsify::Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "EncodedInfo", missing_as_null)]
struct Summary {
    src_words: Vec<Word>,
    tgt_words: Vec<Word>,
    /// Tokens the encoder saw (with `<s>`, `</s>` and the prefix, as `tokenize` lists them).
    src_tokens: usize,
    tgt_tokens: usize,
    /// Cosine of the pooled sentence embeddings; `null` when encoded with
    /// `sentenceCosine: false`.
    cosine: Option<f32>,
    /// The hidden layer the states come from.
    layer: usize,
}

/// One pair encoded by `Aligner.encode`: `extract(options)` aligns it with any extraction
/// options, without running the encoder again; `dispose()` frees its states.
#[wasm_bindgen]
pub struct Encoded {
    states: Rc<Slot>,
    /// The aligner's model and backend; gone once the aligner is disposed.
    owner: Weak<Loaded>,
    summary: Summary,
}

impl Encoded {
    pub(crate) fn new(pair: EncodedPair, owner: &Rc<Loaded>) -> (Encoded, Weak<Slot>) {
        let cosine = match (&pair.src.pooled, &pair.tgt.pooled) {
            (Some(a), Some(b)) => Some(xlalign_core::embed::cosine(a, b)),
            _ => None,
        };
        let summary = Summary {
            src_words: pair.src.words.clone(),
            tgt_words: pair.tgt.words.clone(),
            src_tokens: pair.src.tokenized.ids.len(),
            tgt_tokens: pair.tgt.tokenized.ids.len(),
            cosine,
            layer: pair.layer,
        };
        let states = Rc::new(RefCell::new(Some(Rc::new(pair))));
        let weak = Rc::downgrade(&states);
        let enc = Encoded {
            states,
            owner: Rc::downgrade(owner),
            summary,
        };
        (enc, weak)
    }

    fn live(&self) -> Result<(Rc<Loaded>, Rc<EncodedPair>)> {
        let pair = self.states.borrow().clone().ok_or_else(|| {
            WasmError::new(
                Code::Disposed,
                "this encoding was disposed; encode the pair again",
            )
        })?;
        let owner = self.owner.upgrade().ok_or_else(|| {
            WasmError::new(
                Code::Disposed,
                "the aligner of this encoding was disposed; load the model again",
            )
        })?;
        Ok((owner, pair))
    }
}

#[wasm_bindgen]
impl Encoded {
    /// Words of the source sentence, with their offsets.
    #[wasm_bindgen(getter, js_name = srcWords, unchecked_return_type = "Word[]")]
    pub fn src_words(&self) -> std::result::Result<JsValue, JsValue> {
        Ok(to_js(&self.summary.src_words)?)
    }

    /// Words of the target sentence, with their offsets.
    #[wasm_bindgen(getter, js_name = tgtWords, unchecked_return_type = "Word[]")]
    pub fn tgt_words(&self) -> std::result::Result<JsValue, JsValue> {
        Ok(to_js(&self.summary.tgt_words)?)
    }

    /// Tokens the encoder saw for the source (with `<s>`, `</s>` and the prefix, as
    /// `tokenize` lists them).
    #[wasm_bindgen(getter, js_name = srcTokens)]
    pub fn src_tokens(&self) -> u32 {
        self.summary.src_tokens as u32
    }

    /// Tokens the encoder saw for the target.
    #[wasm_bindgen(getter, js_name = tgtTokens)]
    pub fn tgt_tokens(&self) -> u32 {
        self.summary.tgt_tokens as u32
    }

    /// Cosine of the pooled sentence embeddings; `null` when encoded with
    /// `sentenceCosine: false`.
    #[wasm_bindgen(getter, unchecked_return_type = "number | null")]
    pub fn cosine(&self) -> JsValue {
        self.summary
            .cosine
            .map_or(JsValue::NULL, |c| JsValue::from_f64(c as f64))
    }

    /// The hidden layer the states come from.
    #[wasm_bindgen(getter)]
    pub fn layer(&self) -> u32 {
        self.summary.layer as u32
    }

    /// The words, token counts, cosine and layer as one plain object (what a worker posts).
    #[wasm_bindgen(js_name = toJSON, unchecked_return_type = "EncodedInfo")]
    pub fn to_json(&self) -> std::result::Result<JsValue, JsValue> {
        Ok(to_js(&self.summary)?)
    }

    /// Aligns the encoded pair: the result `align` gives for the same sentences and options.
    /// Options: `method`, `threshold`, `temperature`, `iterations`, `alpha`, `distortion`,
    /// `direction`, `level`, `signal`; unset ones take the model's recommendation. Options
    /// that change the encoding (`layer`, `pretokenized`, `sentenceCosine`, `words`) belong to
    /// `encode`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PairAlignment>")]
    pub fn extract(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ExtractOptions & Cancellable")]
        options: JsValue,
    ) -> Promise {
        let prepared = (|| -> Result<_> {
            let (owner, pair) = self.live()?;
            let call = options::extract_call(&options, &owner.core())?;
            Ok((owner, pair, call))
        })();
        future_to_promise(async move {
            let (owner, pair, call) = prepared?;
            options::check_signal(&call.signal)?;
            let r = extract_pair(&owner.core(), &pair, &call.options).await?;
            Ok(to_js(&r)?)
        })
    }

    /// Frees the hidden states. Extractions already running finish; later ones throw an
    /// error with code `disposed`.
    pub fn dispose(&self) {
        self.states.borrow_mut().take();
    }
}
