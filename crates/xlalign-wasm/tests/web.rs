//! Browser tests (headless Chromium through wasm-bindgen-test-runner). Run them with
//! `scripts/test-browser.sh`, which starts `tests/browser/serve.py` to serve the model and
//! the reference data and passes its address in at compile time:
//!   XLALIGN_TEST_MODEL_URL  URL of the GGUF model
//!   XLALIGN_TEST_DATA_URL   URL of the folder holding e5-small-q4-reference.json

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use xlalign_wasm::Aligner;

// In a dedicated worker, as the library is meant to be used: long CPU work never blocks the
// page the test driver talks to (chromedriver gives up on a renderer busy for 30 s).
wasm_bindgen_test_configure!(run_in_dedicated_worker);

// Read at build time, so that `cargo check --tests` works without them; a run without them
// stops with what to do.
fn model_url() -> &'static str {
    let Some(url) = option_env!("XLALIGN_TEST_MODEL_URL") else {
        panic!("XLALIGN_TEST_MODEL_URL was not set at build time: run scripts/test-browser.sh (it serves the model)")
    };
    url
}

fn data_url(file: &str) -> String {
    let Some(base) = option_env!("XLALIGN_TEST_DATA_URL") else {
        panic!("XLALIGN_TEST_DATA_URL was not set at build time: run scripts/test-browser.sh")
    };
    format!("{}/{file}", base.trim_end_matches('/'))
}

async fn fetch_response(url: &str) -> web_sys::Response {
    let fetch: Function = Reflect::get(&js_sys::global(), &"fetch".into())
        .unwrap()
        .unchecked_into();
    let p: Promise = fetch
        .call1(&JsValue::NULL, &url.into())
        .unwrap()
        .unchecked_into();
    let r: web_sys::Response = JsFuture::from(p)
        .await
        .unwrap_or_else(|e| panic!("fetch {url}: {e:?}"))
        .unchecked_into();
    assert!(
        r.ok(),
        "GET {url}: HTTP {} (is the test server serving it?)",
        r.status()
    );
    r
}

async fn fetch_bytes(url: &str) -> Uint8Array {
    let r = fetch_response(url).await;
    Uint8Array::new(&JsFuture::from(r.array_buffer().unwrap()).await.unwrap())
}

async fn fetch_json(url: &str) -> serde_json::Value {
    let r = fetch_response(url).await;
    let text = JsFuture::from(r.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

thread_local! {
    static MODEL_BYTES: RefCell<Option<Uint8Array>> = const { RefCell::new(None) };
    static CPU: RefCell<Option<Rc<Aligner>>> = const { RefCell::new(None) };
}

async fn model_bytes() -> Uint8Array {
    if let Some(b) = MODEL_BYTES.with(|m| m.borrow().clone()) {
        return b;
    }
    let b = fetch_bytes(model_url()).await;
    MODEL_BYTES.with(|m| *m.borrow_mut() = Some(b.clone()));
    b
}

fn opts(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

/// One CPU aligner shared by the tests (loading parses a 76 MB file).
async fn cpu() -> Rc<Aligner> {
    if let Some(a) = CPU.with(|c| c.borrow().clone()) {
        return a;
    }
    let bytes = model_bytes().await;
    let a = Rc::new(
        Aligner::load(bytes.into(), opts(&[("backend", "cpu".into())]))
            .await
            .expect("load from bytes"),
    );
    CPU.with(|c| *c.borrow_mut() = Some(a.clone()));
    a
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

/// The value a rejected call threw must be an `Error` with a message and the given `code`.
fn assert_js_error(e: JsValue, code: &str, needle: &str) {
    let err = e
        .dyn_ref::<js_sys::Error>()
        .unwrap_or_else(|| panic!("thrown value is not an Error: {e:?}"));
    let msg = String::from(err.message());
    assert!(!msg.is_empty(), "error without a message");
    assert_eq!(
        get(&e, "code").as_string().as_deref(),
        Some(code),
        "code of error `{msg}`"
    );
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "message `{msg}` does not mention `{needle}`"
    );
}

async fn rejects(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => e,
    }
}

async fn embed(a: &Aligner, texts: &[&str]) -> Vec<Vec<f32>> {
    let arr: Array = texts.iter().map(|t| JsValue::from_str(t)).collect();
    let out = JsFuture::from(a.embed(arr.into(), JsValue::UNDEFINED))
        .await
        .expect("embed");
    Array::from(&out)
        .iter()
        .map(|v| v.unchecked_into::<Float32Array>().to_vec())
        .collect()
}

async fn yield_to_browser() {
    let p = Promise::new(&mut |resolve, _| {
        let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .unwrap()
            .unchecked_into();
        set_timeout
            .call2(&JsValue::NULL, &resolve, &0.into())
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[wasm_bindgen_test]
async fn loads_from_bytes_and_reports_model_facts() {
    let a = cpu().await;
    let m = a.model().unwrap();
    assert_eq!(get(&m, "hidden").as_f64(), Some(384.0));
    assert_eq!(get(&m, "layers").as_f64(), Some(12.0));
    assert_eq!(get(&m, "vocab").as_f64(), Some(250037.0));
    assert_eq!(
        get(&m, "fileBytes").as_f64(),
        Some(model_bytes().await.length() as f64)
    );
    let b = a.backend().unwrap();
    assert_eq!(get(&b, "kind").as_string().as_deref(), Some("cpu"));
    assert!(!get(&b, "device").as_string().unwrap().is_empty());
}

#[wasm_bindgen_test]
async fn loads_from_an_array_buffer_too() {
    let bytes = model_bytes().await;
    let a = Aligner::load(bytes.buffer().into(), opts(&[("backend", "cpu".into())]))
        .await
        .expect("load from ArrayBuffer");
    assert_eq!(get(&a.model().unwrap(), "hidden").as_f64(), Some(384.0));
    a.dispose();
}

#[wasm_bindgen_test]
async fn loads_from_url_streaming_progress_then_from_the_cache() {
    JsFuture::from(js_clear_cache()).await.unwrap();
    let events = Array::new();
    let ev = events.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
        ev.push(&p);
    });
    let o = opts(&[
        ("backend", "cpu".into()),
        ("onProgress", cb.as_ref().clone()),
    ]);
    let a = Aligner::load(model_url().into(), o)
        .await
        .expect("load from URL");
    let size = model_bytes().await.length() as f64;
    let downloads: Vec<JsValue> = events
        .iter()
        .filter(|e| get(e, "phase").as_string().as_deref() == Some("download"))
        .collect();
    assert!(
        downloads.len() >= 3,
        "expected several download progress events, got {}",
        downloads.len()
    );
    let loaded: Vec<f64> = downloads
        .iter()
        .map(|e| get(e, "loaded").as_f64().unwrap())
        .collect();
    assert!(
        loaded.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {loaded:?}"
    );
    assert_eq!(*loaded.last().unwrap(), size);
    assert_eq!(get(downloads.last().unwrap(), "total").as_f64(), Some(size));
    assert_eq!(
        get(&events.get(events.length() - 1), "phase")
            .as_string()
            .as_deref(),
        Some("ready")
    );
    a.dispose();

    // The second load comes from the Cache API, after its SHA-256 check.
    events.set_length(0);
    let o = opts(&[
        ("backend", "cpu".into()),
        ("onProgress", cb.as_ref().clone()),
    ]);
    let a = Aligner::load(model_url().into(), o)
        .await
        .expect("load from cache");
    let phases: Vec<String> = events
        .iter()
        .map(|e| get(&e, "phase").as_string().unwrap())
        .collect();
    assert!(phases.contains(&"cache".to_string()), "phases {phases:?}");
    assert!(
        !phases.contains(&"download".to_string()),
        "downloaded again: {phases:?}"
    );
    a.dispose();
    let cleared = JsFuture::from(js_clear_cache()).await.unwrap();
    assert_eq!(cleared.as_bool(), Some(true));
}

fn js_clear_cache() -> Promise {
    wasm_bindgen_futures::future_to_promise(async {
        xlalign_wasm::clear_cache().await.map(JsValue::from)
    })
}

/// Sentence vectors against the reference encoder and its f32 version, with the bound the
/// native CPU backend is held to (crates/xlalign-core/tests/cpu_parity.rs). Texts the
/// Hugging Face tokenizer splits differently from the reference's own are left out there
/// too, since their vectors differ for reasons outside the encoder.
#[wasm_bindgen_test]
async fn embeddings_match_the_reference_sentences() {
    let reference = fetch_json(&data_url("e5-small-q4-reference.json")).await;
    let a = cpu().await;
    let same: Vec<&serde_json::Value> = reference["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .filter(|s| s.get("hf_ids_passage").is_none())
        .collect();
    assert!(same.len() >= 15, "only {} reference sentences", same.len());
    let mut got = Vec::new();
    for s in &same {
        // One text per call with a pause between: a long synchronous stretch on the page's
        // main thread makes the WebDriver session time out.
        got.extend(embed(&a, &[s["text"].as_str().unwrap()]).await);
        yield_to_browser().await;
    }
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let cos = |a: &[f32], b: &[f32]| dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt());
    for (s, v) in same.iter().zip(&got) {
        let c = cos(v, &floats(&s["embedding_passage"]));
        let f = cos(v, &floats(&s["embedding_passage_fp32_dequant"]));
        assert!(
            c >= 0.999 && f >= 0.999,
            "`{}`: cosine {c} to the reference, {f} to the f32 version",
            s["name"]
        );
    }
}

#[wasm_bindgen_test]
async fn similarity_is_the_cosine_of_the_embeddings() {
    let a = cpu().await;
    let en = "The old lighthouse keeper walked along the rocky shore every morning.";
    let de = "Der alte Leuchtturmwärter ging jeden Morgen die felsige Küste entlang.";
    let other = "Quarterly revenue rose by four percent despite higher costs.";
    let v = embed(&a, &[en, de, other]).await;
    let s = JsFuture::from(a.similarity(en.into(), de.into(), JsValue::UNDEFINED))
        .await
        .unwrap()
        .as_f64()
        .unwrap() as f32;
    assert!(
        (s - dot(&v[0], &v[1])).abs() < 1e-4,
        "similarity {s} vs dot {}",
        dot(&v[0], &v[1])
    );
    let unrelated = JsFuture::from(a.similarity(en.into(), other.into(), JsValue::UNDEFINED))
        .await
        .unwrap()
        .as_f64()
        .unwrap() as f32;
    assert!(
        s > unrelated + 0.05,
        "translation {s} should beat unrelated {unrelated}"
    );
}

#[wasm_bindgen_test]
async fn corrupt_and_truncated_models_throw_model_errors() {
    let junk = Uint8Array::from(&b"this is certainly not a model file at all"[..]);
    let e = Aligner::load(junk.into(), JsValue::UNDEFINED)
        .await
        .err()
        .expect("junk must not load");
    assert_js_error(e, "model", "GGUF");

    let bytes = model_bytes().await;
    let truncated = bytes.subarray(0, bytes.length() / 2);
    let e = Aligner::load(truncated.into(), JsValue::UNDEFINED)
        .await
        .err()
        .expect("half a model must not load");
    assert_js_error(e, "model", "truncated");
}

#[wasm_bindgen_test]
async fn bad_sources_and_options_throw_input_errors() {
    let e = Aligner::load(JsValue::from_f64(42.0), JsValue::UNDEFINED)
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "source");
    let bytes = model_bytes().await;
    let e = Aligner::load(bytes.clone().into(), opts(&[("backnd", "cpu".into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "backnd");
    let e = Aligner::load(bytes.clone().into(), opts(&[("backend", "tpu".into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "tpu");
    let e = Aligner::load(bytes.clone().into(), opts(&[("onProgress", 3.into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "onProgress");
    let e = Aligner::load(bytes.clone().into(), JsValue::from_str("cpu"))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "options");
    let e = Aligner::load(bytes.into(), opts(&[("sha256", "abc".into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "sha256");
}

#[wasm_bindgen_test]
async fn wrong_sha256_throws_an_integrity_error() {
    let bytes = model_bytes().await;
    let zeros = "0".repeat(64);
    let e = Aligner::load(bytes.into(), opts(&[("sha256", zeros.as_str().into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "integrity", "SHA-256");
}

#[wasm_bindgen_test]
async fn missing_url_throws_a_network_error() {
    let url = format!("{}.does-not-exist", model_url());
    let e = Aligner::load(url.into(), opts(&[("cache", false.into())]))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "network", "404");
}

#[wasm_bindgen_test]
async fn an_aborted_load_throws_abort_error() {
    let ctl = web_sys::AbortController::new().unwrap();
    ctl.abort();
    let e = Aligner::load(model_url().into(), opts(&[("signal", ctl.signal().into())]))
        .await
        .err()
        .unwrap();
    assert_eq!(get(&e, "name").as_string().as_deref(), Some("AbortError"));
    assert_js_error(e, "cancelled", "abort");
}

#[wasm_bindgen_test]
async fn bad_texts_throw_input_errors() {
    let a = cpu().await;
    assert_js_error(
        rejects(a.embed("not an array".into(), JsValue::UNDEFINED)).await,
        "input",
        "array",
    );
    let mixed: Array = [JsValue::from_str("ok"), JsValue::from_f64(1.0)]
        .into_iter()
        .collect();
    assert_js_error(
        rejects(a.embed(mixed.into(), JsValue::UNDEFINED)).await,
        "input",
        "texts[1]",
    );
    let huge = "a ".repeat(600_000);
    let one: Array = [JsValue::from_str(&huge)].into_iter().collect();
    assert_js_error(
        rejects(a.embed(one.into(), JsValue::UNDEFINED)).await,
        "input",
        "limit",
    );
    let prefix = opts(&[("prefix", "title".into())]);
    let one: Array = [JsValue::from_str("x")].into_iter().collect();
    assert_js_error(
        rejects(a.embed(one.into(), prefix)).await,
        "input",
        "prefix",
    );
    assert_js_error(
        rejects(a.similarity(1.into(), "x".into(), JsValue::UNDEFINED)).await,
        "input",
        "string",
    );
}

#[wasm_bindgen_test]
async fn a_disposed_aligner_throws() {
    let bytes = model_bytes().await;
    let a = Aligner::load(bytes.into(), opts(&[("backend", "cpu".into())]))
        .await
        .unwrap();
    a.dispose();
    let one: Array = [JsValue::from_str("x")].into_iter().collect();
    assert_js_error(
        rejects(a.embed(one.into(), JsValue::UNDEFINED)).await,
        "disposed",
        "disposed",
    );
    assert_js_error(a.backend().err().unwrap(), "disposed", "disposed");
}

async fn align(a: &Aligner, src: &str, tgt: &str, options: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(a.align(src.into(), tgt.into(), options)).await
}

fn links(r: &JsValue) -> Vec<(u32, u32)> {
    Array::from(&get(r, "links"))
        .iter()
        .map(|l| {
            (
                get(&l, "src").as_f64().unwrap() as u32,
                get(&l, "tgt").as_f64().unwrap() as u32,
            )
        })
        .collect()
}

#[wasm_bindgen_test]
async fn aligns_a_known_pair() {
    let a = cpu().await;
    let r = align(
        &a,
        "The house is small.",
        "Das Haus ist klein.",
        JsValue::UNDEFINED,
    )
    .await
    .expect("align");
    let words: Vec<String> = Array::from(&get(&r, "srcWords"))
        .iter()
        .map(|w| get(&w, "text").as_string().unwrap())
        .collect();
    assert_eq!(words, ["The", "house", "is", "small", "."]);
    let tgt = Array::from(&get(&r, "tgtWords"));
    let haus = tgt.get(1);
    assert_eq!(get(&haus, "text").as_string().as_deref(), Some("Haus"));
    assert_eq!(
        (
            get(&haus, "charStart").as_f64(),
            get(&haus, "charEnd").as_f64()
        ),
        (Some(4.0), Some(8.0))
    );
    let l = links(&r);
    for want in [(0, 0), (1, 1), (2, 2), (3, 3)] {
        assert!(l.contains(&want), "link {want:?} missing from {l:?}");
    }
    let sim = get(&r, "similarity");
    let cos = get(&sim, "cosine")
        .as_f64()
        .expect("sentence cosine computed by default");
    assert!(cos > 0.8, "cosine {cos}");
    assert!(get(&get(&sim, "bertscore"), "f1").as_f64().unwrap() > 0.5);
    let ws = Array::from(&get(&r, "wordSimilarity"));
    assert_eq!(ws.length(), 5);
    assert_eq!(Array::from(&ws.get(0)).length(), 5);
    // Another method and no sentence cosine: still aligned, cosine left out.
    let o = opts(&[
        ("method", "argmax".into()),
        ("sentenceCosine", false.into()),
        ("layer", 8.into()),
    ]);
    let r = align(&a, "The house is small.", "Das Haus ist klein.", o)
        .await
        .expect("argmax");
    assert!(links(&r).contains(&(1, 1)));
    assert!(get(&get(&r, "similarity"), "cosine").is_null());
    assert_eq!(get(&r, "layer").as_f64(), Some(8.0));
    assert_eq!(get(&r, "method").as_string().as_deref(), Some("argmax"));
}

/// Links as (source, target) word indices.
type Links = Vec<(u32, u32)>;

fn parse_gold(line: &str) -> (Links, Links) {
    let (mut sure, mut possible) = (Vec::new(), Vec::new());
    for l in line.split_whitespace() {
        let (sep, is_sure) = if l.contains('-') {
            ('-', true)
        } else {
            ('?', false)
        };
        let (i, j) = l.split_once(sep).unwrap();
        let link = (i.parse().unwrap(), j.parse().unwrap());
        if is_sure {
            sure.push(link);
        }
        possible.push(link);
    }
    (sure, possible)
}

/// English–French gold slice through `alignBatch` in the browser, with the AER bound the
/// native CLI is held to on the same data (crates/xlalign-cli/tests/cli.rs).
#[wasm_bindgen_test]
async fn align_batch_reaches_the_native_aer_on_the_enfr_gold_slice() {
    let text = |f: &'static str| async move {
        let r = fetch_response(&data_url(&format!("gold/enfr/{f}"))).await;
        JsFuture::from(r.text().unwrap())
            .await
            .unwrap()
            .as_string()
            .unwrap()
    };
    let (src, tgt, gold) = (
        text("enfr.src").await,
        text("enfr.tgt").await,
        text("enfr.gold").await,
    );
    let pairs: Array = src
        .lines()
        .zip(tgt.lines())
        .map(|(s, t)| -> JsValue {
            [JsValue::from_str(s), JsValue::from_str(t)]
                .into_iter()
                .collect::<Array>()
                .into()
        })
        .collect();
    let n = pairs.length();
    assert_eq!(n, 60);
    let a = cpu().await;
    let progress = Array::new();
    let p = progress.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        p.push(&get(&e, "done"));
    });
    let o = opts(&[
        ("pretokenized", true.into()),
        ("sentenceCosine", false.into()),
    ]);
    let out = JsFuture::from(a.align_batch(pairs.into(), o, cb.as_ref().clone()))
        .await
        .expect("alignBatch");
    let out = Array::from(&out);
    assert_eq!(out.length(), n);
    let done: Vec<f64> = progress.iter().map(|d| d.as_f64().unwrap()).collect();
    assert_eq!(done.first(), Some(&0.0));
    assert_eq!(done.last(), Some(&60.0));
    assert!(
        done.len() >= 8,
        "one progress report per batch of 8, got {done:?}"
    );

    let (mut a_and_s, mut a_and_p, mut n_a, mut n_s) = (0usize, 0usize, 0usize, 0usize);
    for (r, g) in out.iter().zip(gold.lines()) {
        assert!(
            get(&r, "error").is_undefined(),
            "pair failed: {:?}",
            get(&r, "error")
        );
        let (sure, possible) = parse_gold(g);
        let pred = links(&r);
        n_a += pred.len();
        n_s += sure.len();
        a_and_s += pred.iter().filter(|l| sure.contains(l)).count();
        a_and_p += pred.iter().filter(|l| possible.contains(l)).count();
    }
    let aer = 100.0 * (1.0 - (a_and_s + a_and_p) as f64 / (n_a + n_s) as f64);
    assert!(aer <= 9.0, "AER {aer:.1} on enfr (native bound 9.0)");
}

#[wasm_bindgen_test]
async fn align_batch_keeps_going_past_a_bad_pair_and_honours_abort() {
    let a = cpu().await;
    let pairs: Array = [
        ("A cat.", "Un chat."),
        ("   ", "Rien."),
        ("Two dogs.", "Deux chiens."),
    ]
    .iter()
    .map(|(s, t)| -> JsValue {
        [JsValue::from_str(s), JsValue::from_str(t)]
            .into_iter()
            .collect::<Array>()
            .into()
    })
    .collect();
    let out = Array::from(
        &JsFuture::from(a.align_batch(
            pairs.clone().into(),
            JsValue::UNDEFINED,
            JsValue::UNDEFINED,
        ))
        .await
        .unwrap(),
    );
    assert_eq!(out.length(), 3);
    assert!(get(&out.get(0), "error").is_undefined());
    let err = get(&out.get(1), "error");
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("input"));
    assert!(get(&err, "message")
        .as_string()
        .unwrap()
        .contains("no words"));
    assert!(links(&out.get(2)).contains(&(1, 1)));

    // Aborted from the progress callback after the first batch of one pair.
    let ctl = web_sys::AbortController::new().unwrap();
    let c = ctl.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if get(&e, "done").as_f64() == Some(1.0) {
            c.abort();
        }
    });
    let o = opts(&[("batchSize", 1.into()), ("signal", ctl.signal().into())]);
    let e = JsFuture::from(a.align_batch(pairs.into(), o, cb.as_ref().clone()))
        .await
        .expect_err("aborted");
    assert_js_error(e, "cancelled", "abort");
}

#[wasm_bindgen_test]
async fn bad_align_calls_throw_input_errors() {
    let a = cpu().await;
    let bad = |k: &str, v: JsValue| opts(&[(k, v)]);
    assert_js_error(
        align(&a, "a b", "c d", bad("methd", "argmax".into()))
            .await
            .err()
            .unwrap(),
        "input",
        "methd",
    );
    assert_js_error(
        align(&a, "a b", "c d", bad("method", "magic".into()))
            .await
            .err()
            .unwrap(),
        "input",
        "magic",
    );
    assert_js_error(
        align(&a, "a b", "c d", bad("threshold", 2.into()))
            .await
            .err()
            .unwrap(),
        "input",
        "threshold",
    );
    assert_js_error(
        align(&a, "a b", "c d", bad("layer", 40.into()))
            .await
            .err()
            .unwrap(),
        "input",
        "layer 40",
    );
    assert_js_error(
        align(&a, "", "c d", JsValue::UNDEFINED)
            .await
            .err()
            .unwrap(),
        "input",
        "no words",
    );
    let huge = "a ".repeat(600_000);
    assert_js_error(
        align(&a, &huge, "c d", JsValue::UNDEFINED)
            .await
            .err()
            .unwrap(),
        "input",
        "limit",
    );
    assert_js_error(
        JsFuture::from(a.align(1.into(), "x".into(), JsValue::UNDEFINED))
            .await
            .err()
            .unwrap(),
        "input",
        "string",
    );
    let e = JsFuture::from(a.align_batch("x".into(), JsValue::UNDEFINED, JsValue::UNDEFINED))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "array");
    let one: Array = [JsValue::from_str("only one")].into_iter().collect();
    let pairs: Array = [JsValue::from(one)].into_iter().collect();
    let e = JsFuture::from(a.align_batch(pairs.into(), JsValue::UNDEFINED, JsValue::UNDEFINED))
        .await
        .err()
        .unwrap();
    assert_js_error(e, "input", "pairs[0]");
    let e = JsFuture::from(a.align_batch(
        Array::new().into(),
        bad("batchSize", 0.into()),
        JsValue::UNDEFINED,
    ))
    .await
    .err()
    .unwrap();
    assert_js_error(e, "input", "batchSize");
}

async fn has_webgpu_adapter() -> bool {
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap();
    let gpu = Reflect::get(&nav, &"gpu".into()).unwrap();
    if gpu.is_undefined() {
        return false;
    }
    let req: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .unwrap()
        .unchecked_into();
    let p: Promise = req.call0(&gpu).unwrap().unchecked_into();
    !JsFuture::from(p).await.unwrap_or(JsValue::NULL).is_null()
}

/// WebGPU where the browser offers an adapter (SwiftShader under the test runner's
/// `--enable-unsafe-webgpu`), with embeddings equal to the CPU backend's; without one,
/// asking for WebGPU throws and `auto` falls back to the CPU saying why.
#[wasm_bindgen_test]
async fn webgpu_when_offered_and_cpu_fallback() {
    let bytes = model_bytes().await;
    let auto = Aligner::load(bytes.clone().into(), JsValue::UNDEFINED)
        .await
        .expect("auto always loads");
    let info = auto.backend().unwrap();
    let kind = get(&info, "kind").as_string().unwrap();
    let reason = get(&info, "reason").as_string().unwrap();
    assert!(!reason.is_empty(), "auto says why it chose {kind}");
    auto.dispose();

    let gpu = Aligner::load(bytes.into(), opts(&[("backend", "webgpu".into())])).await;
    if !has_webgpu_adapter().await {
        // The test command runs Chromium with SwiftShader WebGPU and sets this, so the WebGPU
        // half cannot be skipped there without failing.
        assert!(
            option_env!("XLALIGN_REQUIRE_GPU") != Some("1"),
            "XLALIGN_REQUIRE_GPU=1 but the browser offers no WebGPU adapter"
        );
        assert_eq!(kind, "cpu");
        assert_js_error(
            gpu.err().expect("no adapter, no WebGPU"),
            "backend",
            "adapter",
        );
        return;
    }
    let gpu = gpu.expect("the browser offers an adapter, so WebGPU loads");
    let info = gpu.backend().unwrap();
    assert_eq!(get(&info, "kind").as_string().as_deref(), Some("webgpu"));
    // Chromium leaves the adapter's description empty; the backend names it by the vendor
    // and architecture the browser reports instead.
    let device = get(&info, "device").as_string().unwrap_or_default();
    assert!(
        !device.is_empty() && !device.starts_with("unnamed"),
        "the WebGPU adapter has no name: {device:?}"
    );
    let texts = ["The house is small.", "Das Haus ist klein."];
    let (g, c) = (
        embed(&gpu, &texts).await,
        embed(&*cpu().await, &texts).await,
    );
    for (x, y) in g.iter().zip(&c) {
        let cos = dot(x, y) / (dot(x, x).sqrt() * dot(y, y).sqrt());
        assert!(cos >= 0.999, "WebGPU vs CPU embedding cosine {cos}");
    }
    let r = align(&gpu, texts[0], texts[1], JsValue::UNDEFINED)
        .await
        .expect("align on WebGPU");
    assert!(links(&r).contains(&(1, 1)));
    gpu.dispose();
}

#[wasm_bindgen_test]
async fn tokenize_gives_the_reference_token_ids() {
    let reference = fetch_json(&data_url("e5-small-q4-reference.json")).await;
    let a = cpu().await;
    let mut checked = 0;
    for s in reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("hf_ids_passage").is_none())
    {
        let t = a
            .tokenize(s["text"].as_str().unwrap().into(), JsValue::UNDEFINED)
            .expect("tokenize");
        let ids = get(&t, "ids")
            .unchecked_into::<js_sys::Uint32Array>()
            .to_vec();
        let want: Vec<u32> = s["ids_passage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want, "`{}`", s["name"]);
        assert_eq!(Array::from(&get(&t, "tokens")).length() as usize, ids.len());
        checked += 1;
    }
    assert!(checked >= 15);
    let none = a
        .tokenize("Hi".into(), opts(&[("prefix", "none".into())]))
        .unwrap();
    assert_eq!(
        Array::from(&get(&none, "tokens")).length(),
        3,
        "<s> ▁Hi </s>"
    );
    assert_js_error(
        a.tokenize(5.into(), JsValue::UNDEFINED).err().unwrap(),
        "input",
        "string",
    );
}

/// Pairs for encode/extract: plain, CJK against English, and astral characters.
const EXTRACT_PAIRS: [(&str, &str); 3] = [
    ("The house is small.", "Das Haus ist klein."),
    (
        "The old lighthouse keeper walked along the shore.",
        "年老的灯塔看守人沿着海岸散步。",
    ),
    ("I love 😀 and 𠀋 here.", "J'adore 😀 et 𠀋 ici."),
];

fn json(v: &JsValue) -> String {
    js_sys::JSON::stringify(v).unwrap().as_string().unwrap()
}

async fn encode(a: &Aligner, src: &str, tgt: &str, options: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(a.encode(src.into(), tgt.into(), options)).await
}

async fn extract(enc: &JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let f: Function = get(enc, "extract").unchecked_into();
    let p: Promise = f.call1(enc, &options)?.unchecked_into();
    JsFuture::from(p).await
}

fn call0(v: &JsValue, method: &str) {
    let f: Function = get(v, method).unchecked_into();
    f.call0(v).unwrap();
}

/// Every method (with other options too) on every pair: `encode(...).extract(x)` must be
/// exactly `align(..., x)` — links, scores, words and the word×word matrix.
async fn assert_extract_equals_align(a: &Aligner, encode_opts: &[(&str, JsValue)]) -> usize {
    let mut compared = 0;
    for (src, tgt) in EXTRACT_PAIRS {
        let enc = encode(a, src, tgt, opts(encode_opts))
            .await
            .expect("encode");
        for method in ["softmax", "entmax", "argmax", "itermax", "match"] {
            for extra in [vec![], vec![("level", JsValue::from("word-average"))]] {
                let mut x = vec![("method", JsValue::from(method))];
                x.extend(extra);
                let got = extract(&enc, opts(&x)).await.expect("extract");
                let mut all: Vec<(&str, JsValue)> = encode_opts.to_vec();
                all.extend(x.clone());
                let want = align(a, src, tgt, opts(&all)).await.expect("align");
                assert_eq!(json(&got), json(&want), "{src} / {method} {x:?}");
                for side in ["srcWords", "tgtWords"] {
                    assert_eq!(json(&get(&enc, side)), json(&get(&got, side)));
                }
                compared += 1;
            }
        }
        call0(&enc, "dispose");
    }
    compared
}

#[wasm_bindgen_test]
async fn encode_then_extract_gives_what_align_gives() {
    let a = cpu().await;
    assert_eq!(assert_extract_equals_align(&a, &[]).await, 30);
    // Encoding options travel with the encoding.
    let n =
        assert_extract_equals_align(&a, &[("layer", 6.into()), ("sentenceCosine", false.into())])
            .await;
    assert_eq!(n, 30);
    let (src, tgt) = EXTRACT_PAIRS[0];
    let enc = encode(&a, src, tgt, JsValue::UNDEFINED).await.unwrap();
    for (key, text) in [("srcTokens", src), ("tgtTokens", tgt)] {
        let ids = get(&a.tokenize(text.into(), JsValue::UNDEFINED).unwrap(), "ids");
        assert_eq!(
            get(&enc, key).as_f64(),
            get(&ids, "length").as_f64(),
            "{key}"
        );
    }
    assert!(get(&enc, "cosine").as_f64().unwrap() > 0.8);
    assert_eq!(get(&enc, "layer").as_f64(), Some(7.0));
    let off = encode(
        &a,
        EXTRACT_PAIRS[0].0,
        EXTRACT_PAIRS[0].1,
        opts(&[("sentenceCosine", false.into())]),
    )
    .await
    .unwrap();
    assert!(get(&off, "cosine").is_null());
}

#[wasm_bindgen_test]
async fn extract_refuses_encoding_options_and_disposed_encodings() {
    let a = cpu().await;
    let enc = encode(&a, "Ja.", "Yes.", JsValue::UNDEFINED).await.unwrap();
    for (key, value, needle) in [
        ("layer", JsValue::from(3), "encode()"),
        ("words", opts(&[("kana", "run".into())]), "encode()"),
        ("method", JsValue::from("nope"), "method"),
        ("threshold", JsValue::from(1.5), "threshold"),
        ("metod", JsValue::from("argmax"), "metod"),
    ] {
        let e = extract(&enc, opts(&[(key, value)])).await.unwrap_err();
        assert_js_error(e, "input", needle);
    }
    assert_js_error(
        encode(&a, "Ja.", "Yes.", opts(&[("method", "argmax".into())]))
            .await
            .unwrap_err(),
        "input",
        "extract()",
    );
    assert_js_error(
        encode(&a, "", "Yes.", JsValue::UNDEFINED)
            .await
            .unwrap_err(),
        "input",
        "source",
    );
    assert_js_error(
        JsFuture::from(a.encode(1.into(), "x".into(), JsValue::UNDEFINED))
            .await
            .unwrap_err(),
        "input",
        "string",
    );
    call0(&enc, "dispose");
    assert_js_error(
        extract(&enc, JsValue::UNDEFINED).await.unwrap_err(),
        "disposed",
        "disposed",
    );
    // Its words stay readable.
    assert_eq!(Array::from(&get(&enc, "srcWords")).length(), 2);

    // Disposing the aligner disposes its encodings.
    let b = Aligner::load(
        model_bytes().await.into(),
        opts(&[("backend", "cpu".into())]),
    )
    .await
    .unwrap();
    let enc = encode(&b, "Ja.", "Yes.", JsValue::UNDEFINED).await.unwrap();
    extract(&enc, JsValue::UNDEFINED)
        .await
        .expect("extract while the aligner lives");
    b.dispose();
    assert_js_error(
        extract(&enc, JsValue::UNDEFINED).await.unwrap_err(),
        "disposed",
        "disposed",
    );
}

#[wasm_bindgen_test]
async fn encode_then_extract_on_webgpu_and_progressive_gives_what_align_gives() {
    if has_webgpu_adapter().await {
        let gpu = Aligner::load(
            model_bytes().await.into(),
            opts(&[("backend", "webgpu".into())]),
        )
        .await
        .expect("WebGPU loads");
        assert_eq!(assert_extract_equals_align(&gpu, &[]).await, 30);
        gpu.dispose();
    } else {
        assert!(
            option_env!("XLALIGN_REQUIRE_GPU") != Some("1"),
            "XLALIGN_REQUIRE_GPU=1 but the browser offers no WebGPU adapter"
        );
    }
    let progressive = Aligner::load(
        model_url().into(),
        opts(&[
            ("backend", "cpu".into()),
            ("progressive", true.into()),
            ("cache", false.into()),
        ]),
    )
    .await
    .expect("progressive load");
    // While the deeper blocks arrive, an unset `sentenceCosine` may be left out of one call
    // and not of the next: compare once every block is present.
    JsFuture::from(progressive.when_loaded())
        .await
        .expect("every block arrives");
    assert_eq!(assert_extract_equals_align(&progressive, &[]).await, 30);
    progressive.dispose();
}

/// `text.slice(utf16Start, utf16End)` is the word, with characters outside the BMP (emoji,
/// Han extension B) before and inside words; `charStart` counts them once.
#[wasm_bindgen_test]
async fn word_offsets_in_utf16_slice_the_text() {
    let a = cpu().await;
    let (src, tgt) = (
        "I love 😀 and 𠀋𠀂 here, 👍🏽ok.",
        "J'adore 😀 et 𠀋 ici ; 🇫🇷 oui.",
    );
    let r = align(&a, src, tgt, JsValue::UNDEFINED).await.unwrap();
    let mut checked = 0;
    for (key, text) in [("srcWords", src), ("tgtWords", tgt)] {
        let js = js_sys::JsString::from(text);
        for w in Array::from(&get(&r, key)).iter() {
            let (s, e) = (
                get(&w, "utf16Start").as_f64().unwrap() as u32,
                get(&w, "utf16End").as_f64().unwrap() as u32,
            );
            assert_eq!(js.slice(s, e), get(&w, "text").as_string().unwrap());
            let (cs, ce) = (
                get(&w, "charStart").as_f64().unwrap() as usize,
                get(&w, "charEnd").as_f64().unwrap() as usize,
            );
            let chars: String = text.chars().skip(cs).take(ce - cs).collect();
            assert_eq!(chars, get(&w, "text").as_string().unwrap());
            checked += 1;
        }
    }
    let here = Array::from(&get(&r, "srcWords"))
        .iter()
        .find(|w| get(w, "text").as_string().as_deref() == Some("here"))
        .unwrap();
    // "I love 😀 and 𠀋𠀂 " is 16 code points and 19 UTF-16 units.
    assert_eq!(get(&here, "charStart").as_f64(), Some(16.0));
    assert_eq!(get(&here, "utf16Start").as_f64(), Some(19.0));
    assert!(checked > 10);
}
