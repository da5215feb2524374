//! Small `tokenizer.json` files for tests: the core's unit tests, and the fuzz targets'
//! seeds and built-in tokenizer (`fuzz/src/targets.rs`, which the core's integration tests
//! compile too), so that both build them one way. Not part of the API.

use serde_json::json;

/// An entry of `added_tokens`: a special token.
pub fn added(id: u32, content: &str) -> serde_json::Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

/// A `<bos> A <eos>` / `<bos> A <eos> B <eos>` post-processor.
pub fn template(bos: &str, bos_id: u32, eos: &str, eos_id: u32) -> serde_json::Value {
    json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": eos, "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": eos, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": eos, "type_id": 1}}],
        "special_tokens": {
            bos: {"id": bos, "ids": [bos_id], "tokens": [bos]},
            eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}
        }
    })
}

/// A BERT-style WordPiece tokenizer (`[PAD] [UNK] [CLS] [SEP]` = 0–3) around `model`.
pub fn wordpiece(model: serde_json::Value) -> String {
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": template("[CLS]", 2, "[SEP]", 3),
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": model
    })
    .to_string()
}

/// An XLM-R-style Unigram tokenizer (NFKC, Metaspace, `<s> <pad> </s> <unk>` = 0–3) with
/// `pieces` and their scores.
pub fn unigram(pieces: &[(&str, f64)], byte_fallback: bool) -> String {
    let vocab: Vec<serde_json::Value> = pieces.iter().map(|(p, s)| json!([p, s])).collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "post_processor": template("<s>", 0, "</s>", 2),
        "decoder": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": byte_fallback}
    })
    .to_string()
}
