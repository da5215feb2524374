//! Text → subword ids with the Hugging Face `tokenizers` crate, run on the `tokenizer.json`
//! embedded in the model file. Offsets are kept so later stages can map subwords to words
//! and to character ranges in the user's text.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::keys;

#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<tokenizers::Tokenizer>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextTokenizer(vocab {}, bos {}, eos {})", self.vocab_size(), self.bos, self.eos)
    }
}

/// One tokenised text, `<s>` and `</s>` included.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// Byte range of each token in the caller's text (the prefix excluded). `None` for
    /// special tokens, prefix tokens and tokens that cover no text (a bare `▁`).
    pub offsets: Vec<Option<(usize, usize)>>,
    /// How many tokens after `<s>` belong to the prefix.
    pub n_prefix: usize,
}

impl Tokenized {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl TextTokenizer {
    pub fn from_json(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("cannot read the embedded tokenizer.json: {e}")))?;
        let id = |key: &str, tok: &str| -> Result<u32> {
            if let Some(v) = f.get(key).and_then(|v| v.as_u64()) {
                return Ok(v as u32);
            }
            inner
                .token_to_id(tok)
                .ok_or_else(|| Error::Tokenizer(format!("no `{key}` in metadata and no `{tok}` token")))
        };
        Ok(TextTokenizer {
            bos: id(keys::BOS_ID, "<s>")?,
            eos: id(keys::EOS_ID, "</s>")?,
            pad: id(keys::PAD_ID, "<pad>")?,
            unk: id(keys::UNK_ID, "<unk>")?,
            inner: Arc::new(inner),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Tokenises `prefix + text` (the prefix is joined before normalisation, as E5 expects),
    /// adding `<s>`/`</s>`. Long texts are not truncated; windowing happens later.
    pub fn encode(&self, text: &str, prefix: &str) -> Result<Tokenized> {
        let full = format!("{prefix}{text}");
        let enc = self
            .inner
            .encode(full.as_str(), true)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise the text: {e}")))?;
        let ids = enc.get_ids().to_vec();
        let tokens = enc.get_tokens().to_vec();
        let special = enc.get_special_tokens_mask();
        let p = prefix.len();
        let mut n_prefix = 0;
        let offsets = enc
            .get_offsets()
            .iter()
            .zip(special)
            .map(|(&(s, e), &sp)| {
                if sp == 1 {
                    return None;
                }
                if e <= p {
                    n_prefix += 1;
                    return None;
                }
                let (s, e) = (s.max(p) - p, e - p);
                (e > s).then_some((s, e))
            })
            .collect();
        Ok(Tokenized { ids, tokens, offsets, n_prefix })
    }
}
