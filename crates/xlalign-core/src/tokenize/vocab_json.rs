//! A fast reader for the one big part of a SentencePiece tokenizer.json: `model.vocab`, the
//! list of `[piece, score]` pairs (250,002 of them, 8 of XLM-R's 9 MB).
//!
//! Through serde every pair costs two nested sequence visits, a string parse and a number
//! parse, which made the vocabulary most of the model's load time. Here a small scanner finds
//! `model.vocab` in the text, reads the pairs in one tight loop, and the rest of the file
//! (normaliser, pre-tokeniser, added tokens, post-processor: a few hundred kB) still goes
//! through serde with the vocabulary cut out.
//!
//! The scanner only takes the common, unambiguous shape: plain keys, a strictly valid list of
//! two-element lists, and at most one `model` and one `vocab` key. Anything else (escaped keys,
//! duplicate keys, a vocabulary that is a map, malformed text) makes it give up, and the
//! caller reads the file through serde alone, so behaviour and error messages stay those of
//! the serde path. Scores are bit for bit the numbers `serde_json` (and so `tokenizers`) reads
//! from the same text; see [`Floats`].

use std::ops::Range;

use super::unigram::Builder;

/// Deeper nesting is left to serde (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// The vocabulary of `json`'s `model` object, read into pieces, and the byte range of the
/// list in the text. `None` when the text is not in the shape this reader takes.
pub(crate) fn read(json: &[u8]) -> Option<(Builder, Range<usize>)> {
    let mut s = Scan { b: json, i: 0, floats: Floats::new() };
    s.ws();
    s.eat(b'{')?;
    let mut found = None;
    s.members(|s, key| {
        if key != b"model" {
            return s.skip_value(1);
        }
        if found.is_some() {
            return None;
        }
        s.eat(b'{')?;
        let mut vocab = None;
        s.members(|s, key| {
            if key != b"vocab" {
                return s.skip_value(2);
            }
            if vocab.is_some() {
                return None;
            }
            let start = s.i;
            let b = s.vocab()?;
            vocab = Some((b, start..s.i));
            Some(())
        })?;
        found = Some(vocab?);
        Some(())
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(())?;
    found
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    floats: Floats,
}

/// Numbers as `serde_json` reads them. With its `float_roundtrip` feature it rounds correctly,
/// as Rust's own parser does; without, it divides the digits by a power of ten, which can be one
/// unit in the last place off. Cargo unifies features per build (the converter turns this one
/// on), so the mode is asked of `serde_json` once. Either way the common plain decimals are
/// parsed here without serde's per-value overhead, and anything else by `serde_json` itself.
struct Floats {
    correctly_rounded: bool,
}

/// A decimal on which the two readings differ.
const PROBE: &str = "0.92030920993190389";

/// Powers of ten up to the most fraction digits a plain decimal here has; all exact in f64.
const POW10: [f64; 20] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19];

impl Floats {
    fn new() -> Floats {
        let serde = serde_json::from_str::<f64>(PROBE).ok();
        Floats { correctly_rounded: serde == PROBE.parse::<f64>().ok() }
    }

    /// The decimal `text`, `[-]int.frac` with at most 19 digits in all, whose digits make
    /// `significand` and `fraction` of which follow the point.
    #[inline]
    fn plain(&self, negative: bool, significand: u64, fraction: usize, text: &[u8]) -> Option<f64> {
        let f = if !self.correctly_rounded || significand < 1 << 53 {
            // serde_json's formula; correctly rounded too when the significand is exact in f64,
            // since the power of ten is and division rounds once.
            significand as f64 / POW10[fraction]
        } else {
            return std::str::from_utf8(text).ok()?.parse().ok();
        };
        Some(if negative { -f } else { f })
    }
}

impl<'a> Scan<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// The members of an object whose `{` was just read, through `value(scan, raw key)`,
    /// which consumes the value; ends after the `}`.
    fn members(&mut self, mut value: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            self.eat(b'"')?;
            let key = self.plain_string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            value(self, key)?;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters, after its opening quote: the text
    /// up to the closing quote, which is consumed. The text is checked for UTF-8 here: the
    /// model file hands tokenizer.json over unchecked, and serde checks only what it reads.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let mut high = 0;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    let s = &self.b[start..self.i - 1];
                    // ASCII needs no further check, and a call per short string adds up.
                    return (high < 0x80 || std::str::from_utf8(s).is_ok()).then_some(s);
                }
                b'\\' | 0..0x20 => return None,
                c => {
                    high |= c;
                    self.i += 1;
                }
            }
        }
    }

    /// Skips any string after its opening quote, escapes included (serde checks them later).
    fn skip_string(&mut self) -> Option<()> {
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    /// Skips one value leniently: serde reads everything outside the vocabulary afterwards
    /// and reports what is malformed.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                self.skip_string()
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' | b':' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                let start = self.i;
                while let Some(b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') = self.b.get(self.i) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    /// A JSON number, strictly by the grammar, read as `serde_json` reads it.
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        let negative = self.eat(b'-').is_some();
        let int_start = self.i;
        let mut significand = 0;
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => significand = self.digits(0),
            _ => return None,
        }
        let mut n_digits = self.i - int_start;
        let mut fraction = 0;
        if self.eat(b'.').is_some() {
            let at = self.i;
            significand = self.digits(significand);
            fraction = self.i - at;
            (fraction > 0).then_some(())?;
            n_digits += fraction;
        }
        let mut plain = fraction > 0 && n_digits <= 19;
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            plain = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            let at = self.i;
            self.digits(0);
            (self.i > at).then_some(())?;
        }
        let text = &self.b[start..self.i];
        if plain {
            self.floats.plain(negative, significand, fraction, text)
        } else {
            serde_json::from_slice(text).ok()
        }
    }

    /// Skips digits, accumulating them onto `acc` (which may wrap; callers only use it for
    /// numbers of at most 19 digits).
    #[inline]
    fn digits(&mut self, mut acc: u64) -> u64 {
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
            acc = acc.wrapping_mul(10).wrapping_add((c - b'0') as u64);
            self.i += 1;
        }
        acc
    }

    /// `[["piece", score], ...]`, strictly.
    fn vocab(&mut self) -> Option<Builder> {
        let mut out = Builder::default();
        // Sized from the text so that the buffers grow once: every regrowth copies and touches
        // fresh pages. What is not used is never touched, and `build` gives it back.
        out.reserve(self.b.len() - self.i, (self.b.len() - self.i) / 16);
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(out);
        }
        loop {
            self.ws();
            self.eat(b'[')?;
            self.ws();
            let open = self.i;
            self.eat(b'"')?;
            match self.plain_string() {
                Some(piece) => out.push_piece(piece).ok()?,
                None => out.push_piece(self.escaped_string(open)?.as_bytes()).ok()?,
            }
            self.ws();
            self.eat(b',')?;
            self.ws();
            let score = self.number()?;
            out.set_score(score);
            self.ws();
            self.eat(b']')?;
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// The string whose opening quote is at `open`, escapes and all (rare in vocabularies: a
    /// quote, a backslash), decoded by serde_json so that it means what it means to serde.
    #[cold]
    fn escaped_string(&mut self, open: usize) -> Option<String> {
        self.i = open + 1;
        self.skip_string()?;
        serde_json::from_slice(self.b.get(open..self.i)?).ok()
    }
}
