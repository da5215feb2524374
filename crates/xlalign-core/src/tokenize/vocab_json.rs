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
    let mut s = Scan {
        b: json,
        i: 0,
        floats: Floats::new(),
    };
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
const POW10: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// The same powers as integers.
const POW10_INT: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

impl Floats {
    fn new() -> Floats {
        let serde = serde_json::from_str::<f64>(PROBE).ok();
        Floats {
            correctly_rounded: serde == PROBE.parse::<f64>().ok(),
        }
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
            match nearest(significand, fraction) {
                Some(f) => f,
                None => return std::str::from_utf8(text).ok()?.parse().ok(),
            }
        };
        Some(if negative { -f } else { f })
    }
}

/// `significand / 10^fraction` rounded to the nearest f64, or `None` when that is not easily
/// settled. The quotient of the two f64s is at most one unit in the last place from it (the
/// significand of up to 19 digits is rounded once, the division once), so it and its two
/// neighbours are candidates, each checked exactly in integers.
#[inline]
fn nearest(significand: u64, fraction: usize) -> Option<f64> {
    let f = significand as f64 / POW10[fraction];
    let bits = f.to_bits();
    [bits, bits + 1, bits - 1]
        .into_iter()
        .map(f64::from_bits)
        .find(|&f| is_nearest(f, significand, fraction))
}

/// Whether `f = m·2^e` is the f64 nearest to `w/d` (`d = 10^fraction`): iff
/// `|w/d − m·2^e| < 2^e/2`, that is `(2m−1)·d < 2w·2^−e < (2m+1)·d`. Ties, powers of two
/// (whose lower neighbour is closer) and very small values answer no.
#[inline]
fn is_nearest(f: f64, w: u64, fraction: usize) -> bool {
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let m = (bits & ((1 << 52) - 1)) | (1 << 52);
    let e = biased - 1075;
    if biased == 0 || m == 1 << 52 || !(-63..0).contains(&e) {
        return false;
    }
    let w2 = (w as u128) << (1 - e);
    let d = POW10_INT[fraction] as u128;
    let m2 = 2 * m as u128;
    (m2 - 1) * d < w2 && w2 < (m2 + 1) * d
}

/// Whether `s` is well-formed UTF-8 (Unicode's table 3-7). `std::str::from_utf8` says the
/// same, but its set-up for long texts costs more than the check itself on a piece of a few
/// bytes, which nearly every piece is (and nearly every one starts with the non-ASCII `▁`).
#[inline]
fn is_utf8(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&lead) = s.get(i) {
        if lead < 0x80 {
            i += 1;
            continue;
        }
        let (len, second) = match lead {
            0xc2..=0xdf => (2, 0x80..=0xbf),
            0xe0 => (3, 0xa0..=0xbf),
            0xe1..=0xec | 0xee..=0xef => (3, 0x80..=0xbf),
            0xed => (3, 0x80..=0x9f),
            0xf0 => (4, 0x90..=0xbf),
            0xf1..=0xf3 => (4, 0x80..=0xbf),
            0xf4 => (4, 0x80..=0x8f),
            _ => return false,
        };
        let Some(rest) = s.get(i + 1..i + len) else {
            return false;
        };
        if !second.contains(&rest[0]) || rest[1..].iter().any(|&c| c & 0xc0 != 0x80) {
            return false;
        }
        i += len;
    }
    true
}

/// The value of eight ASCII digits read as a little-endian word (first digit lowest).
#[inline]
fn eight_digits(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    ((v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
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
                    return (high < 0x80 || is_utf8(s)).then_some(s);
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
                while let Some(b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') =
                    self.b.get(self.i)
                {
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
    /// numbers of at most 19 digits). Scores run to 17 digits, so eight are taken at a time
    /// where they are all digits (the SWAR steps of simdjson and fast_float).
    #[inline]
    fn digits(&mut self, mut acc: u64) -> u64 {
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let v = u64::from_le_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            // A byte is a digit iff it is at least b'0' and adding 0x46 does not carry past 0x7f.
            if (v.wrapping_add(0x4646_4646_4646_4646) | v.wrapping_sub(0x3030_3030_3030_3030))
                & 0x8080_8080_8080_8080
                != 0
            {
                break;
            }
            acc = acc.wrapping_mul(100_000_000).wrapping_add(eight_digits(v));
            self.i += 8;
        }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]
        #[test]
        fn utf8_check_agrees_with_std(bytes in prop::collection::vec(any::<u8>(), 0..12), text in "\\PC{0,6}") {
            prop_assert_eq!(is_utf8(&bytes), std::str::from_utf8(&bytes).is_ok());
            prop_assert!(is_utf8(text.as_bytes()));
            // Valid text with one byte changed: the two checks still agree.
            let mut changed = text.clone().into_bytes();
            if let Some(b) = changed.first_mut() {
                *b ^= bytes.first().copied().unwrap_or(0x80);
            }
            prop_assert_eq!(is_utf8(&changed), std::str::from_utf8(&changed).is_ok());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]
        /// Whenever the exact check accepts a quotient, it is the correctly rounded value.
        #[test]
        fn nearest_is_correctly_rounded(significand in 1u64..10_000_000_000_000_000_000, fraction in 1usize..20) {
            let digits = format!("{significand:0>width$}", width = fraction + 1);
            let text = format!("{}.{}", &digits[..digits.len() - fraction], &digits[digits.len() - fraction..]);
            let exact: f64 = text.parse().unwrap();
            if let Some(f) = nearest(significand, fraction) {
                prop_assert_eq!(f.to_bits(), exact.to_bits(), "{}", text);
            }
        }
    }

    #[test]
    fn nearest_settles_most_scores() {
        // Scores as tokenizer.json files write them (f32 values printed to 17 digits).
        let mut settled = 0;
        let mut total = 0;
        for i in 1..20_000u32 {
            let score = -(i as f32 * 0.000_731).ln_1p() as f64 - 1.0;
            let text = format!("{:.16}", -score);
            let (int, frac) = text.split_once('.').unwrap();
            let significand: u64 = format!("{int}{frac}").parse().unwrap();
            if significand < 1 << 53 {
                continue;
            }
            total += 1;
            if let Some(f) = nearest(significand, frac.len()) {
                assert_eq!(f, text.parse::<f64>().unwrap(), "{text}");
                settled += 1;
            }
        }
        assert!(
            total > 1000 && settled * 1000 > total * 999,
            "{settled} of {total}"
        );
    }

    #[test]
    fn utf8_check_edges() {
        let cases: &[&[u8]] = &[
            b"",
            b"a",
            "▁the".as_bytes(),
            "😀".as_bytes(),
            b"\xc0\x80",
            b"\xc1\xbf",
            b"\xc2\x80",
            b"\xe0\x9f\xbf",
            b"\xe0\xa0\x80",
            b"\xed\x9f\xbf",
            b"\xed\xa0\x80",
            b"\xef\xbf\xbf",
            b"\xf0\x8f\xbf\xbf",
            b"\xf0\x90\x80\x80",
            b"\xf4\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\xe2\x96",
            b"\xe2\x96\x81\x80",
            b"\x80",
            b"\xff",
        ];
        for &c in cases {
            assert_eq!(is_utf8(c), std::str::from_utf8(c).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn digits_in_runs_of_eight_and_one() {
        for text in [
            "0",
            "7",
            "12345678",
            "123456789",
            "1234567890123456789",
            "00000000x",
            "9999999999999999",
        ] {
            let mut s = Scan {
                b: text.as_bytes(),
                i: 0,
                floats: Floats::new(),
            };
            let got = s.digits(0);
            let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
            assert_eq!(got, digits.parse::<u64>().unwrap(), "{text}");
            assert_eq!(s.i, digits.len());
        }
        // A non-digit anywhere in a run of eight stops the fast step there.
        for bad in [b'/', b':', b'.', b' ', 0x80, 0xff] {
            for at in 0..8 {
                let mut text = *b"12345678";
                text[at] = bad;
                let mut s = Scan {
                    b: &text,
                    i: 0,
                    floats: Floats::new(),
                };
                s.digits(0);
                assert_eq!(s.i, at, "{text:?}");
            }
        }
    }
}
