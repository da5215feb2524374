//! A SentencePiece Unigram model in flat arrays, plugged into the `tokenizers` pipeline.
//!
//! The crate's own `Unigram` keeps a `String` per piece, a `HashMap` from piece to id and a
//! trie whose every node is a `HashMap`: for XLM-R's 250,002 pieces that is ~250 MB and
//! ~0.4 s to build, more than the 4-bit weights themselves. Here every piece lives in one byte
//! buffer (score, length and bytes side by side), exact lookups go through an open-addressing
//! table of 32-bit slots, and a bit set of piece prefixes cuts Viterbi short, so the whole
//! model is ~10 MB and loads in little more than the time it takes to parse the JSON.
//!
//! Tokenisation replicates `Unigram::encode_optimized` (SentencePiece's optimised Viterbi)
//! and `Unigram::tokenize` of tokenizers 0.23 step by step, so that ids and offsets are the
//! same: candidates are tried shortest first and replace the best path only when strictly
//! better, a character that no piece covers becomes `<unk>` scored `min_score - 10`,
//! consecutive unknowns are fused into one token, and `byte_fallback` spells unknown text as
//! `<0xXX>` pieces when the vocabulary has them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use tokenizers::tokenizer::{AddedToken, Model, Token, Trainer};

/// Same penalty as SentencePiece and `tokenizers` give an unknown character.
const UNK_PENALTY: f64 = 10.0;

/// Start of the deserialisation error raised for a `model` that is not Unigram, so that the
/// caller can tell "use another implementation" apart from "this file is broken".
pub(crate) const NOT_UNIGRAM: &str = "model is not Unigram: ";

const EMPTY: u32 = u32::MAX;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

pub struct CompactUnigram {
    /// One record per piece, back to back in id order: score (f64), byte length (u16), then
    /// the piece's bytes. Keeping all that a Viterbi step needs side by side costs one cache
    /// miss per candidate instead of one per array. A record's id is its index in `starts`
    /// (binary search), needed only for the tokens Viterbi keeps.
    records: Vec<u8>,
    /// Start of each id's record, strictly increasing.
    starts: Vec<u32>,
    /// Open addressing with linear probing. A slot packs a record start (its high
    /// `32 - tag_bits` bits) with `tag_bits` bits of the piece's hash that spare most
    /// mismatching probes a look at the record; `EMPTY` is free. A piece listed twice maps to
    /// its last id, as in `tokenizers`.
    table: Vec<u32>,
    table_bits: u32,
    tag_bits: u32,
    /// One bit per hash of every piece prefix that ends on a character boundary (pieces
    /// included): when a candidate's bit is clear no longer piece can start with it, so
    /// Viterbi stops looking further ahead. Collisions only cost extra lookups.
    prefixes: Vec<u64>,
    prefix_bits: u32,
    /// Longest piece in bytes: Viterbi never looks further ahead.
    max_len: usize,
    min_score: f64,
    unk_id: Option<u32>,
    byte_fallback: bool,
    /// Id of `<0xXX>` for each byte, when `byte_fallback` is on and the piece exists.
    byte_ids: Vec<Option<u32>>,
}

/// Score (f64) and byte length (u16) before each piece's bytes.
pub(crate) const HEADER: usize = 10;

impl fmt::Debug for CompactUnigram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactUnigram")
            .field("pieces", &self.len())
            .field("unk_id", &self.unk_id)
            .field("byte_fallback", &self.byte_fallback)
            .finish()
    }
}

/// FNV-1a, fed one byte at a time so that Viterbi extends one hash per start position instead
/// of rehashing every candidate.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(FNV_PRIME)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| fnv_step(h, b))
}

#[inline]
fn is_char_start(b: u8) -> bool {
    // UTF-8 continuation bytes are 0b10xx_xxxx.
    (b as i8) >= -0x40
}

/// Accumulates pieces while the JSON streams by, without a `String` per piece.
#[derive(Default)]
pub(crate) struct Builder {
    records: Vec<u8>,
    starts: Vec<u32>,
    /// Character boundaries over all pieces, which sizes the prefix bit set.
    n_prefixes: usize,
}

impl Builder {
    pub(crate) fn reserve(&mut self, record_bytes: usize, pieces: usize) {
        self.records.reserve(record_bytes);
        self.starts.reserve(pieces);
    }

    /// Appends a piece (UTF-8) whose score [`Builder::set_score`] fills in next.
    pub(crate) fn push_piece(&mut self, piece: &[u8]) -> Result<(), String> {
        let too_big = || "the vocabulary is over 4 GB".to_string();
        let start = u32::try_from(self.records.len()).map_err(|_| too_big())?;
        let len = u16::try_from(piece.len()).map_err(|_| {
            format!(
                "a vocabulary piece is {} bytes long; at most 65,535 are supported",
                piece.len()
            )
        })?;
        self.records.extend_from_slice(&[0; 8]);
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records.extend_from_slice(piece);
        // u32::MAX stays free so that no slot of the lookup table can read as `EMPTY`.
        if self.records.len() >= u32::MAX as usize {
            return Err(too_big());
        }
        self.n_prefixes += piece.iter().filter(|&&b| is_char_start(b)).count();
        self.starts.push(start);
        Ok(())
    }

    pub(crate) fn set_score(&mut self, score: f64) {
        if let Some(&start) = self.starts.last() {
            let start = start as usize;
            self.records[start..start + 8].copy_from_slice(&score.to_le_bytes());
        }
    }
}

impl CompactUnigram {
    /// Builds the model from `(piece, score)` pairs, with the checks of `Unigram::from`.
    pub fn from_pieces<S: AsRef<str>>(
        pieces: impl IntoIterator<Item = (S, f64)>,
        unk_id: Option<usize>,
        byte_fallback: bool,
    ) -> Result<CompactUnigram, String> {
        let mut b = Builder::default();
        for (piece, score) in pieces {
            b.push_piece(piece.as_ref().as_bytes())?;
            b.set_score(score);
        }
        CompactUnigram::build(b, unk_id, byte_fallback)
    }

    pub(crate) fn build(
        mut b: Builder,
        unk_id: Option<usize>,
        byte_fallback: bool,
    ) -> Result<CompactUnigram, String> {
        let n = b.starts.len();
        if let Some(unk) = unk_id {
            if n == 0 {
                return Err("the vocabulary is empty but at least <unk> is needed".into());
            }
            if unk >= n {
                return Err(format!("unk_id {unk} is outside the {n}-piece vocabulary"));
            }
        }
        b.records.shrink_to_fit();
        b.starts.shrink_to_fit();
        let table_bits = (2 * n).max(16).next_power_of_two().trailing_zeros();
        // Record starts are below `records.len()`, which fits in this many bits.
        let start_bits = (usize::BITS - b.records.len().leading_zeros()).max(1);
        let mut model = CompactUnigram {
            records: b.records,
            starts: b.starts,
            table: vec![EMPTY; 1 << table_bits],
            table_bits,
            tag_bits: 32 - start_bits,
            prefixes: Vec::new(),
            prefix_bits: 0,
            max_len: 0,
            min_score: f64::INFINITY,
            unk_id: unk_id.map(|u| u as u32),
            byte_fallback,
            byte_ids: Vec::new(),
        };
        // Every character boundary of every piece is a prefix; about 8 bits per prefix keeps
        // collisions near one in eight.
        model.prefix_bits = (8 * b.n_prefixes)
            .max(64)
            .next_power_of_two()
            .trailing_zeros();
        let mut prefixes = vec![0u64; (1 << model.prefix_bits) / 64];
        // Both the bit set (2 MB for XLM-R) and the table (4 MB) take writes at random places,
        // each a likely cache miss. Pieces go in batches: hash a batch, then do its bit-set
        // writes, then touch its table slots, then insert; the middle two are independent
        // memory accesses the processor overlaps, where inserting piece by piece would wait
        // for each miss in turn behind the hashing and the branches on what a slot holds.
        const BATCH: usize = 64;
        let mut hashes = [0u64; BATCH];
        let mut bits = Vec::with_capacity(BATCH * 16);
        for first in (0..n).step_by(BATCH) {
            let ids = first..n.min(first + BATCH);
            bits.clear();
            for (id, slot) in ids.clone().zip(hashes.iter_mut()) {
                let rec = model.starts[id] as usize;
                let key = model.rec_bytes(rec);
                let mut h = FNV_OFFSET;
                for (i, &b) in key.iter().enumerate() {
                    h = fnv_step(h, b);
                    if key.get(i + 1).is_none_or(|&next| is_char_start(next)) {
                        bits.push(model.prefix_bit(h));
                    }
                }
                model.max_len = model.max_len.max(key.len());
                model.min_score = model.min_score.min(model.rec_score(rec));
                *slot = h;
            }
            for &bit in &bits {
                prefixes[bit / 64] |= 1 << (bit % 64);
            }
            let touched = hashes[..ids.len()]
                .iter()
                .fold(0u32, |acc, &h| acc ^ model.table[model.slot(h).0]);
            std::hint::black_box(touched);
            for (id, &h) in ids.zip(&hashes) {
                model.insert(model.starts[id], h);
            }
        }
        model.prefixes = prefixes;
        if byte_fallback {
            model.byte_ids = (0..=255u8)
                .map(|b| model.lookup(format!("<0x{b:02X}>").as_bytes()))
                .collect();
        }
        Ok(model)
    }

    #[inline]
    fn prefix_bit(&self, h: u64) -> usize {
        (h.wrapping_mul(0xd6e8_feb8_6659_fd93) >> (64 - self.prefix_bits)) as usize
    }

    #[inline]
    fn may_prefix(&self, h: u64) -> bool {
        let bit = self.prefix_bit(h);
        self.prefixes[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Every piece and its score, in id order.
    pub fn pieces(&self) -> impl Iterator<Item = (&str, f64)> + Clone + '_ {
        (0..self.len()).map(|id| (self.piece(id), self.rec_score(self.starts[id] as usize)))
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    pub fn byte_fallback(&self) -> bool {
        self.byte_fallback
    }

    #[inline]
    fn rec_score(&self, rec: usize) -> f64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.records[rec..rec + 8]);
        f64::from_le_bytes(b)
    }

    /// The id of the record at `rec`: its index among the record starts.
    fn rec_id(&self, rec: usize) -> u32 {
        (self.starts.partition_point(|&s| s as usize <= rec) - 1) as u32
    }

    #[inline]
    fn rec_bytes(&self, rec: usize) -> &[u8] {
        let len = u16::from_le_bytes([self.records[rec + 8], self.records[rec + 9]]) as usize;
        &self.records[rec + HEADER..rec + HEADER + len]
    }

    fn piece_bytes(&self, id: usize) -> &[u8] {
        self.rec_bytes(self.starts[id] as usize)
    }

    fn piece(&self, id: usize) -> &str {
        // Every piece was appended from a `&str`, so the slice is whole UTF-8.
        std::str::from_utf8(self.piece_bytes(id)).unwrap_or_default()
    }

    /// The home slot of hash `h` and its tag.
    #[inline]
    fn slot(&self, h: u64) -> (usize, u32) {
        let mixed = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let tag = ((h >> 32) as u32) & ((1u64 << self.tag_bits) - 1) as u32;
        ((mixed >> (64 - self.table_bits)) as usize, tag)
    }

    #[inline]
    fn pack(&self, rec: u32, tag: u32) -> u32 {
        ((rec as u64) << self.tag_bits) as u32 | tag
    }

    /// Record start and tag of an occupied slot.
    #[inline]
    fn unpack(&self, slot: u32) -> (usize, u32) {
        let rec = ((slot as u64) >> self.tag_bits) as usize;
        (rec, slot & ((1u64 << self.tag_bits) - 1) as u32)
    }

    /// Adds the record at `rec`, whose piece hashes to `h`.
    fn insert(&mut self, rec: u32, h: u64) {
        let key = self.rec_bytes(rec as usize);
        let (mut i, tag) = self.slot(h);
        let mask = self.table.len() - 1;
        loop {
            let cur = self.table[i];
            if cur == EMPTY {
                self.table[i] = self.pack(rec, tag);
                return;
            }
            let (cur_rec, cur_tag) = self.unpack(cur);
            if cur_tag == tag && self.rec_bytes(cur_rec) == key {
                // A repeated piece keeps the last id, like `tokenizers`' HashMap insert.
                self.table[i] = self.pack(rec, tag);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// The record of piece `key`, whose FNV-1a hash is `h`.
    #[inline]
    fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let (mut i, tag) = self.slot(h);
        let mask = self.table.len() - 1;
        loop {
            let slot = self.table[i];
            if slot == EMPTY {
                return None;
            }
            let (rec, t) = self.unpack(slot);
            if t == tag && self.rec_bytes(rec) == key {
                return Some(rec);
            }
            i = (i + 1) & mask;
        }
    }

    fn lookup(&self, key: &[u8]) -> Option<u32> {
        self.find(fnv(key), key).map(|rec| self.rec_id(rec))
    }

    /// Turns segments into `tokenizers` tokens as `Unigram::tokenize` does.
    fn tokens(
        &self,
        sentence: &str,
        segments: &[(usize, usize, u32)],
    ) -> Result<Vec<Token>, BoxError> {
        let mut tokens = Vec::with_capacity(segments.len());
        for &(start, end, id) in segments {
            let text = &sentence[start..end];
            // `tokenizers` looks every piece up again by its text; only fused unknown runs can
            // differ from the Viterbi id (they may spell a piece, or nothing).
            let id = if Some(id) == self.unk_id {
                self.lookup(text.as_bytes())
            } else {
                Some(id)
            };
            let id = match id {
                Some(id) => id,
                None => {
                    if self.byte_fallback {
                        let ids: Option<Vec<u32>> =
                            text.bytes().map(|b| self.byte_ids[b as usize]).collect();
                        if let Some(ids) = ids {
                            for (b, id) in text.bytes().zip(ids) {
                                tokens.push(Token::new(id, format!("<0x{b:02X}>"), (start, end)));
                            }
                            continue;
                        }
                    }
                    self.unk_id.ok_or_else(|| {
                        err("an unknown piece needs <unk>, and the model has no unk_id")
                    })?
                }
            };
            tokens.push(Token::new(id, text.to_string(), (start, end)));
        }
        Ok(tokens)
    }

    /// Best segmentation of `s` into `out` as `(start, end, id)`, unknown runs fused, in text
    /// order; `best` is scratch space.
    fn segment(
        &self,
        s: &str,
        best: &mut Vec<Best>,
        out: &mut Vec<(usize, usize, u32)>,
    ) -> Result<(), BoxError> {
        let bytes = s.as_bytes();
        let n = bytes.len();
        let unk_score = self.min_score - UNK_PENALTY;
        best.clear();
        best.resize(
            n + 1,
            Best {
                score: 0.0,
                start: usize::MAX,
                rec: UNKNOWN,
            },
        );
        let mut pos = 0;
        while pos < n {
            let base = best[pos].score;
            let char_len = utf8_len(bytes[pos]);
            let mut has_single = false;
            let limit = n.min(pos + self.max_len);
            let mut h = FNV_OFFSET;
            let mut end = pos;
            // Shortest first, as the trie walk in `tokenizers` yields them.
            while end < limit {
                h = fnv_step(h, bytes[end]);
                end += 1;
                if end < n && !is_char_start(bytes[end]) {
                    continue;
                }
                if !self.may_prefix(h) {
                    break;
                }
                if let Some(rec) = self.find(h, &bytes[pos..end]) {
                    let cand = self.rec_score(rec) + base;
                    let t = &mut best[end];
                    if t.start == usize::MAX || cand > t.score {
                        *t = Best {
                            score: cand,
                            start: pos,
                            rec: rec as u32,
                        };
                    }
                    if end - pos == char_len {
                        has_single = true;
                    }
                }
            }
            if !has_single {
                let t = &mut best[pos + char_len];
                let cand = unk_score + base;
                if t.start == usize::MAX || cand > t.score {
                    if self.unk_id.is_none() {
                        return Err(err(
                            "an unknown character needs <unk>, and the model has no unk_id",
                        ));
                    }
                    *t = Best {
                        score: cand,
                        start: pos,
                        rec: UNKNOWN,
                    };
                }
            }
            pos += char_len;
        }

        out.clear();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            if node.start == usize::MAX {
                // Unreachable: every character start gets a piece or <unk> above.
                return Err(err("no segmentation covers the text"));
            }
            // `unk_id` is set whenever an unknown character got onto the path.
            let id = if node.rec == UNKNOWN {
                self.unk_id.unwrap_or_default()
            } else {
                self.rec_id(node.rec as usize)
            };
            let fuse = Some(id) == self.unk_id;
            match out.last_mut() {
                // Walking backwards: this unknown run continues the one just emitted.
                Some((start, _, prev)) if fuse && Some(*prev) == self.unk_id => *start = node.start,
                _ => out.push((node.start, end, id)),
            }
            end = node.start;
        }
        out.reverse();
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Best {
    score: f64,
    /// `usize::MAX`: no path reaches this position yet.
    start: usize,
    /// Record of the piece that ends here, or [`UNKNOWN`].
    rec: u32,
}

/// [`Best::rec`] of an unknown character (no record starts at `u32::MAX`).
const UNKNOWN: u32 = u32::MAX;

/// Length of the UTF-8 sequence that starts with `lead`.
#[inline]
fn utf8_len(lead: u8) -> usize {
    match lead {
        0..0xc0 => 1,
        0xc0..0xe0 => 2,
        0xe0..0xf0 => 3,
        _ => 4,
    }
}

type Scratch = (Vec<Best>, Vec<(usize, usize, u32)>);

thread_local! {
    /// Viterbi buffers reused across the many short pre-tokens of a text.
    static SCRATCH: RefCell<Scratch> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Buffers above this many entries are freed after use rather than kept per thread.
const SCRATCH_KEEP: usize = 1 << 14;

impl Model for CompactUnigram {
    type Trainer = NoTrainer;

    fn tokenize(&self, sentence: &str) -> tokenizers::Result<Vec<Token>> {
        SCRATCH.with_borrow_mut(|(best, segments)| {
            let result = self
                .segment(sentence, best, segments)
                .and_then(|()| self.tokens(sentence, segments));
            if best.capacity() > SCRATCH_KEEP {
                *best = Vec::new();
                *segments = Vec::new();
            }
            result
        })
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.lookup(token.as_bytes())
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.len()).then(|| self.piece(id as usize).to_string())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.table
            .iter()
            .filter(|&&slot| slot != EMPTY)
            .map(|&slot| {
                let rec = self.unpack(slot).0;
                (
                    String::from_utf8_lossy(self.rec_bytes(rec)).into_owned(),
                    self.rec_id(rec),
                )
            })
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err(err("saving the compact Unigram model is not supported"))
    }

    fn get_trainer(&self) -> NoTrainer {
        NoTrainer
    }
}

/// The compact model is load-only; `tokenizers` insists on naming a trainer type.
pub struct NoTrainer;

impl Trainer for NoTrainer {
    type Model = CompactUnigram;

    fn should_show_progress(&self) -> bool {
        false
    }

    fn train(&self, _model: &mut CompactUnigram) -> tokenizers::Result<Vec<AddedToken>> {
        Err(err("training the compact Unigram model is not supported"))
    }

    fn feed<I, S, F>(&mut self, _iterator: I, _process: F) -> tokenizers::Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
        F: Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
    {
        Err(err("training the compact Unigram model is not supported"))
    }
}

// Deserialisation reads the `model` object of tokenizer.json with the same keys as
// `tokenizers`' Unigram (`type`, `unk_id`, `vocab`, `byte_fallback`; others ignored), streaming
// the vocabulary into the records, or taking the one `super::vocab_json` has read already.

thread_local! {
    /// A vocabulary read ahead of the serde pass, whose text then holds an empty list in its
    /// place. serde offers no way to hand a value to the model's deserialiser deep inside
    /// `TokenizerImpl`'s, hence the slot.
    static READ_AHEAD: Cell<Option<Builder>> = const { Cell::new(None) };
}

/// Runs `f` (a deserialisation of tokenizer.json whose `model.vocab` was cut out) with `vocab`
/// standing in for the missing list.
pub(crate) fn with_vocab<R>(vocab: Builder, f: impl FnOnce() -> R) -> R {
    /// Empties the slot however `f` ends, so that no later reading finds a stale vocabulary.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            READ_AHEAD.take();
        }
    }
    let _clear = Clear;
    READ_AHEAD.set(Some(vocab));
    f()
}

impl<'de> Deserialize<'de> for CompactUnigram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ModelVisitor)
    }
}

struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = CompactUnigram;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Unigram model object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CompactUnigram, A::Error> {
        let mut builder = None;
        let mut unk_id: Option<usize> = None;
        let mut byte_fallback = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let t: String = map.next_value()?;
                    if t != "Unigram" {
                        return Err(de::Error::custom(format!("{NOT_UNIGRAM}{t}")));
                    }
                }
                "unk_id" => unk_id = map.next_value()?,
                "byte_fallback" => byte_fallback = map.next_value()?,
                "vocab" => match READ_AHEAD.take() {
                    Some(b) => {
                        map.next_value::<IgnoredAny>()?;
                        builder = Some(b);
                    }
                    None => {
                        let mut b = Builder::default();
                        map.next_value_seed(VocabSeed(&mut b))?;
                        builder = Some(b);
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let b = builder.ok_or_else(|| de::Error::custom("Missing vocab"))?;
        CompactUnigram::build(b, unk_id, byte_fallback)
            .map_err(|e| de::Error::custom(format!("Unable to load vocab {e}")))
    }
}

struct VocabSeed<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for VocabSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VocabSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [piece, score] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.0.starts.reserve(n);
        }
        while seq.next_element_seed(PieceSeed(self.0))?.is_some() {}
        Ok(())
    }

    // A vocabulary given as a map belongs to WordPiece, BPE or WordLevel, whose files may omit
    // `type` (legacy layout).
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(de::Error::custom(format!(
            "{NOT_UNIGRAM}vocabulary is a map"
        )))
    }
}

struct PieceSeed<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for PieceSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PieceSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [piece, score] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        seq.next_element_seed(StrSeed(self.0))?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let score: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        self.0.set_score(score);
        Ok(())
    }
}

struct StrSeed<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a piece string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_piece(v.as_bytes()).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::unigram::Unigram;

    fn pieces(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(p, s)| (p.to_string(), *s)).collect()
    }

    /// Tokens (id, text, offsets) from both models, which must agree.
    fn both(
        vocab: &[(&str, f64)],
        unk: Option<usize>,
        byte_fallback: bool,
        text: &str,
    ) -> Vec<Token> {
        let stock = Unigram::from(pieces(vocab), unk, byte_fallback).unwrap();
        let compact = CompactUnigram::from_pieces(pieces(vocab), unk, byte_fallback).unwrap();
        let a = stock.tokenize(text).map_err(|e| e.to_string());
        let b = compact.tokenize(text).map_err(|e| e.to_string());
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{text:?}");
                b
            }
            (Err(_), Err(_)) => Vec::new(),
            (a, b) => panic!("{text:?}: tokenizers {a:?}, compact {b:?}"),
        }
    }

    const ABCD: &[(&str, f64)] = &[
        ("<unk>", 0.0),
        ("a", 0.0),
        ("b", 0.0),
        ("c", 0.0),
        ("d", 0.0),
        ("cd", 1.0),
        ("ab", 2.0),
        ("abc", 5.0),
        ("abcd", 10.0),
    ];

    #[test]
    fn best_path_and_fused_unknowns() {
        let toks = both(ABCD, Some(0), false, "abcdacdxx");
        let texts: Vec<_> = toks.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(texts, ["abcd", "a", "cd", "xx"]);
        assert_eq!(toks[3].id, 0);
        assert_eq!(toks[3].offsets, (7, 9));
        both(ABCD, Some(0), false, "xéa漢🙂b");
        both(ABCD, Some(0), false, "");
    }

    #[test]
    fn ties_keep_the_first_candidate() {
        // "ab" = "a"+"b" = 1.0: the shorter-first order and strict comparison decide.
        let v = &[
            ("<unk>", 0.0),
            ("a", 0.5),
            ("b", 0.5),
            ("ab", 1.0),
            ("abab", 2.0),
            ("ba", 1.0),
        ];
        for text in ["ab", "abab", "aba", "bab", "ababab"] {
            both(v, Some(0), false, text);
        }
    }

    #[test]
    fn repeated_pieces_take_the_last_id() {
        let v = &[("<unk>", 0.0), ("a", -1.0), ("b", -1.0), ("a", -0.5)];
        let toks = both(v, Some(0), false, "aba");
        assert_eq!(toks.iter().map(|t| t.id).collect::<Vec<_>>(), [3, 2, 3]);
        let m = CompactUnigram::from_pieces(pieces(v), Some(0), false).unwrap();
        assert_eq!(m.token_to_id("a"), Some(3));
        assert_eq!(m.id_to_token(1).as_deref(), Some("a"));
        assert_eq!(m.get_vocab_size(), 4);
        assert_eq!(m.get_vocab().len(), 3);
    }

    #[test]
    fn unknown_runs_are_looked_up_by_their_text() {
        // With positive scores two unknowns (2 x 90) beat the piece "ab" (100), and the fused
        // run "ab" then takes the piece's id, as in `tokenizers`.
        let v = &[("<unk>", 100.0), ("ab", 100.0), ("c", 100.0)];
        let toks = both(v, Some(0), false, "abc");
        assert_eq!(
            toks.iter().map(|t| (t.id, t.offsets)).collect::<Vec<_>>(),
            [(1, (0, 2)), (2, (2, 3))]
        );
        // The literal piece "<unk>" has the unknown id and fuses with its unknown neighbours.
        let v = &[("<unk>", 0.0), ("x", -30.0), ("y", -1.0)];
        for text in ["xy", "zz", "z<unk>z", "<unk>", "yzzy", "<unk>y<unk>"] {
            both(v, Some(0), false, text);
        }
        assert_eq!(both(v, Some(0), false, "z<unk>z").len(), 1);
    }

    #[test]
    fn byte_fallback_spells_unknown_text_as_bytes() {
        let mut v: Vec<(String, f64)> = pieces(&[("<unk>", 0.0), ("a", -1.0)]);
        v.extend(
            (0..=255u8)
                .filter(|b| *b != 0xA9)
                .map(|b| (format!("<0x{b:02X}>"), -5.0)),
        );
        let refs: Vec<(&str, f64)> = v.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let toks = both(&refs, Some(0), true, "a漢a");
        assert!(toks.iter().any(|t| t.value == "<0xE6>"), "{toks:?}");
        // é is C3 A9 and <0xA9> is missing: the whole run falls back to <unk>.
        let toks = both(&refs, Some(0), true, "é");
        assert_eq!(toks.len(), 1);
        assert_eq!(toks[0].id, 0);
    }

    #[test]
    fn missing_unk_is_an_error_only_when_needed() {
        let v = &[("a", -1.0), ("b", -1.0)];
        assert!(both(v, None, false, "ab").len() == 2);
        let m = CompactUnigram::from_pieces(pieces(v), None, false).unwrap();
        assert!(m.tokenize("ax").is_err());
        both(v, None, false, "ax");
    }

    #[test]
    fn bad_unk_ids_are_rejected() {
        assert!(CompactUnigram::from_pieces(pieces(&[("a", 0.0)]), Some(1), false).is_err());
        assert!(CompactUnigram::from_pieces(Vec::<(String, f64)>::new(), Some(0), false).is_err());
    }

    #[test]
    fn deserialises_like_tokenizers() {
        let json = r#"{"type":"Unigram","unk_id":0,"extra":[1,{"x":2}],"vocab":[["<unk>",0],["a\u0062",-1.5],["\"q",-2.0]],"byte_fallback":false}"#;
        let m: CompactUnigram = serde_json::from_str(json).unwrap();
        assert_eq!(m.get_vocab_size(), 3);
        assert_eq!(m.token_to_id("ab"), Some(1));
        assert_eq!(m.token_to_id("\"q"), Some(2));
        let scores: Vec<f64> = m.starts.iter().map(|&r| m.rec_score(r as usize)).collect();
        assert_eq!(scores, [0.0, -1.5, -2.0]);

        let e = serde_json::from_str::<CompactUnigram>(r#"{"type":"WordPiece","vocab":{"a":0}}"#)
            .unwrap_err();
        assert!(e.to_string().starts_with(NOT_UNIGRAM), "{e}");
        let e = serde_json::from_str::<CompactUnigram>(r#"{"vocab":{"a":0},"unk_token":"[UNK]"}"#)
            .unwrap_err();
        assert!(e.to_string().starts_with(NOT_UNIGRAM), "{e}");
        for bad in [
            r#"{"type":"Unigram","unk_id":0}"#,
            r#"{"type":"Unigram","unk_id":5,"vocab":[["a",0]]}"#,
            r#"{"type":"Unigram","vocab":[["a"]]}"#,
            r#"{"type":"Unigram","vocab":[[1,0]]}"#,
        ] {
            let e = serde_json::from_str::<CompactUnigram>(bad).unwrap_err();
            assert!(!e.to_string().starts_with(NOT_UNIGRAM), "{bad}: {e}");
        }
    }
}
