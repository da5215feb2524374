//! A Unigram vocabulary as compact arrays, the form it takes in the model file.
//!
//! - **lengths**: each piece's length in bytes, a LEB128 varint per piece (one byte for every
//!   piece under 128 bytes, which is all of XLM-R's);
//! - **pieces**: the pieces' UTF-8 bytes back to back, in id order (itself UTF-8 text);
//! - **scores**: each score's bit pattern minus the previous one's (wrapping), zigzag coded as
//!   a LEB128 varint. SentencePiece sorts pieces by score, so neighbours are a few dozen units
//!   in the last place apart and nearly every delta takes one byte;
//! - **corrections** (f32 scores only): two bits per piece, the first piece in the lowest bits.
//!
//! `tokenizers` reads scores as f64 and SentencePiece computes them as f32, but a
//! `tokenizer.json` need not print them exactly: XLM-R's prints 16 significant digits, so for
//! a quarter of its pieces the f64 read from the text is one unit in the last place (of the
//! f64) above or below the f32. The f32 bits are coded as above, and the corrections say, per
//! piece, whether the f64 is the f32 (0), one unit above (1) or below (2) it. Decoding so gives
//! back the very f64 values `tokenizers` reads from the JSON, which keeps Viterbi's choices
//! (and so ids and offsets) identical. A vocabulary whose scores lie further from f32 values
//! is stored with the f64 bits themselves (score type `f64`, no corrections).
//!
//! For XLM-R's 250,002 pieces that is 0.25 MB of lengths, 2.58 MB of pieces, 0.27 MB of
//! scores and 0.06 MB of corrections, against 8.1 MB of `[piece, score]` JSON. Decoding checks
//! every count against the bytes that hold it before it reserves anything, so a damaged or
//! crafted file gives an error, never a panic or a huge allocation.

use super::unigram::Builder;

/// How the score bits are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreType {
    F32,
    F64,
}

impl ScoreType {
    pub fn name(self) -> &'static str {
        match self {
            ScoreType::F32 => "f32",
            ScoreType::F64 => "f64",
        }
    }

    pub fn from_name(name: &str) -> Option<ScoreType> {
        match name {
            "f32" => Some(ScoreType::F32),
            "f64" => Some(ScoreType::F64),
            _ => None,
        }
    }

    /// Width of the bit patterns, which bounds every delta's varint.
    fn bits(self) -> u32 {
        match self {
            ScoreType::F32 => 32,
            ScoreType::F64 => 64,
        }
    }
}

/// A packed vocabulary (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    pub count: usize,
    pub lengths: Vec<u8>,
    pub pieces: String,
    pub scores: Vec<u8>,
    pub score_type: ScoreType,
    /// Two bits per piece with `F32` scores, empty with `F64`.
    pub corrections: Vec<u8>,
}

/// Packs `(piece, score)` pairs in id order.
pub fn pack<'a>(vocab: impl Iterator<Item = (&'a str, f64)> + Clone) -> Packed {
    let near_f32 = vocab.clone().all(|(_, s)| correction(s).is_some());
    let score_type = if near_f32 {
        ScoreType::F32
    } else {
        ScoreType::F64
    };
    let mut p = Packed {
        count: 0,
        lengths: Vec::new(),
        pieces: String::new(),
        scores: Vec::new(),
        score_type,
        corrections: Vec::new(),
    };
    let mut prev = 0u64;
    for (id, (piece, score)) in vocab.enumerate() {
        p.count += 1;
        put_varint(&mut p.lengths, piece.len() as u64);
        p.pieces.push_str(piece);
        let (bits, delta) = match score_type {
            ScoreType::F32 => {
                let bits = (score as f32).to_bits();
                let code = correction(score).unwrap_or(0);
                if id % 4 == 0 {
                    p.corrections.push(0);
                }
                if let Some(last) = p.corrections.last_mut() {
                    *last |= code << (2 * (id % 4));
                }
                let delta = bits.wrapping_sub(prev as u32) as i32;
                (bits as u64, zigzag(delta as i64))
            }
            ScoreType::F64 => {
                let bits = score.to_bits();
                (bits, zigzag(bits.wrapping_sub(prev) as i64))
            }
        };
        put_varint(&mut p.scores, delta);
        prev = bits;
    }
    p
}

/// The correction code of `score` against its nearest f32 (see the module documentation), or
/// `None` when it is further away than one unit in the last place.
fn correction(score: f64) -> Option<u8> {
    let near = (score as f32 as f64).to_bits();
    match score.to_bits() {
        b if b == near => Some(0),
        b if b == near.wrapping_add(1) => Some(1),
        b if b == near.wrapping_sub(1) => Some(2),
        _ => None,
    }
}

/// Unpacks into the compact model's builder. `count` is the number of pieces the file
/// announces; every array must hold exactly that many.
pub(crate) fn unpack(
    count: u64,
    lengths: &[u8],
    pieces: &[u8],
    scores: &[u8],
    score_type: ScoreType,
    corrections: &[u8],
) -> Result<Builder, String> {
    // Every piece takes at least one byte of lengths and one of scores.
    if count > lengths.len() as u64 || count > scores.len() as u64 {
        return Err(format!(
            "announces {count} pieces, but has only {} bytes of lengths and {} bytes of scores \
             (at least one each per piece)",
            lengths.len(),
            scores.len()
        ));
    }
    let count = count as usize;
    let want_corrections = match score_type {
        ScoreType::F32 => count.div_ceil(4),
        ScoreType::F64 => 0,
    };
    if corrections.len() != want_corrections {
        return Err(format!(
            "has {} bytes of score corrections; {count} pieces with {} scores need {want_corrections}",
            corrections.len(),
            score_type.name()
        ));
    }
    // One check of the whole text is much faster than one per piece; each piece must then
    // also start and end on a character boundary.
    if simdutf8::basic::from_utf8(pieces).is_err() {
        // The slower check says where.
        let e = std::str::from_utf8(pieces).err();
        return Err(format!(
            "the pieces are not UTF-8 ({})",
            e.map_or("invalid".to_string(), |e| e.to_string())
        ));
    }
    let mut b = Builder::default();
    b.reserve(pieces.len() + count * super::unigram::HEADER, count);
    let mut lens = Varints::new(lengths, "lengths");
    let mut deltas = Varints::new(scores, "scores");
    let mut at = 0usize;
    let mut bits = 0u64;
    for id in 0..count {
        let len = lens.next(16)? as usize;
        let piece = at
            .checked_add(len)
            .and_then(|end| pieces.get(at..end))
            .ok_or_else(|| {
                format!(
                    "piece {id} ({len} bytes at {at}) runs past the {} bytes of pieces",
                    pieces.len()
                )
            })?;
        if !pieces.get(at + len).is_none_or(|&next| is_char_start(next)) {
            return Err(format!("piece {id} ends inside a UTF-8 character"));
        }
        at += len;
        b.push_piece(piece)?;
        let delta = unzigzag(deltas.next(score_type.bits())?);
        let score = match score_type {
            ScoreType::F32 => {
                bits = (bits as u32).wrapping_add(delta as u32) as u64;
                let near = (f32::from_bits(bits as u32) as f64).to_bits();
                let corrected = match (corrections[id / 4] >> (2 * (id % 4))) & 3 {
                    0 => near,
                    1 => near.wrapping_add(1),
                    2 => near.wrapping_sub(1),
                    _ => return Err(format!("the score correction of piece {id} is 3")),
                };
                f64::from_bits(corrected)
            }
            ScoreType::F64 => {
                bits = bits.wrapping_add(delta as u64);
                f64::from_bits(bits)
            }
        };
        if !score.is_finite() {
            return Err(format!("the score of piece {id} is {score}"));
        }
        b.set_score(score);
    }
    if at != pieces.len() {
        return Err(format!(
            "{} bytes of pieces are left after the {count} pieces",
            pieces.len() - at
        ));
    }
    lens.end(count)?;
    deltas.end(count)?;
    Ok(b)
}

#[inline]
fn is_char_start(b: u8) -> bool {
    (b as i8) >= -0x40
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// LEB128 varints read one after the other.
pub(super) struct Varints<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Varints<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Varints<'a> {
        Varints { bytes, at: 0, what }
    }

    /// The next value, which must fit in `bits` bits.
    #[inline]
    pub(super) fn next(&mut self, bits: u32) -> Result<u64, String> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err(format!(
                    "the {} end inside a value, after {} bytes",
                    self.what, self.at
                ));
            };
            self.at += 1;
            let part = (b & 0x7f) as u64;
            // `bits - shift` bits are left for this byte's seven.
            if shift >= bits || (bits - shift < 7 && part >> (bits - shift) != 0) {
                return Err(format!(
                    "the {} hold a value over {bits} bits at byte {}",
                    self.what,
                    self.at - 1
                ));
            }
            v |= part << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// Bytes read so far.
    pub(super) fn position(&self) -> usize {
        self.at
    }

    /// Checks that nothing follows the last value.
    fn end(&self, count: usize) -> Result<(), String> {
        if self.at == self.bytes.len() {
            return Ok(());
        }
        Err(format!(
            "the {} hold more than the {count} values announced ({} bytes left)",
            self.what,
            self.bytes.len() - self.at
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::unigram::CompactUnigram;
    use super::*;

    fn unpacked(p: &Packed) -> Result<Vec<(String, u64)>, String> {
        let b = unpack(
            p.count as u64,
            &p.lengths,
            p.pieces.as_bytes(),
            &p.scores,
            p.score_type,
            &p.corrections,
        )?;
        let m = CompactUnigram::build(b, None, false)?;
        Ok(m.pieces()
            .map(|(p, s)| (p.to_string(), s.to_bits()))
            .collect())
    }

    fn roundtrip(vocab: &[(&str, f64)]) -> Packed {
        let p = pack(vocab.iter().copied());
        let want: Vec<(String, u64)> = vocab
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_bits()))
            .collect();
        assert_eq!(unpacked(&p).unwrap(), want);
        p
    }

    #[test]
    fn scores_near_f32_pack_as_f32_and_others_as_f64() {
        // As XLM-R's tokenizer.json prints them: 16 digits, one unit off the f32 either way.
        let p = roundtrip(&[
            ("<s>", 0.0),
            ("▁the", -3.4635426998138428),
            ("k", -7.471577644348144),
            ("▁al", -7.77080488204956),
            ("a", -0.0),
            ("é", -18.5),
        ]);
        assert_eq!(p.score_type, ScoreType::F32);
        assert_eq!(p.lengths, [3, 6, 1, 5, 1, 2]);
        assert_eq!(p.pieces, "<s>▁thek▁alaé");
        assert_eq!(p.corrections, [0b1010_0000, 0]);
        let p = roundtrip(&[("a", 0.1), ("b", -1e300), ("c", 5e-324), ("", f64::MIN)]);
        assert_eq!(p.score_type, ScoreType::F64);
        assert!(p.corrections.is_empty());
        roundtrip(&[]);
        // A piece of 200 bytes takes a two-byte length.
        let long = "x".repeat(200);
        let p = roundtrip(&[(&long, -1.0), ("y", -2.0)]);
        assert_eq!(p.lengths, [0xc8, 0x01, 1]);
    }

    #[test]
    fn sorted_scores_take_few_bytes() {
        // Neighbours a few units in the last place apart, as in SentencePiece vocabularies.
        let vocab: Vec<(String, f64)> = (0..10_000)
            .map(|i| (format!("p{i}"), -(1.0 + i as f32 * 1e-6) as f64))
            .collect();
        let p = pack(vocab.iter().map(|(p, s)| (p.as_str(), *s)));
        assert!(p.scores.len() < 10_010, "{}", p.scores.len());
    }

    /// `p` with one part changed.
    fn with(p: &Packed, f: impl FnOnce(&mut Packed)) -> Packed {
        let mut p = p.clone();
        f(&mut p);
        p
    }

    fn bytes_of(p: &mut Packed) -> &mut Vec<u8> {
        // SAFETY (of the test): a damaged text is what is being tested; only `unpack`, which
        // takes bytes and checks them, sees it.
        unsafe { p.pieces.as_mut_vec() }
    }

    #[test]
    fn damaged_arrays_are_errors() {
        let good = pack([("<s>", 0.0), ("▁a", -1.0), ("é", -2.0)].into_iter());
        let cases = [
            (
                "more pieces announced",
                with(&good, |p| p.count = 4),
                "announces 4 pieces",
            ),
            (
                "huge count",
                with(&good, |p| p.count = usize::MAX >> 1),
                "announces",
            ),
            (
                "fewer announced",
                with(&good, |p| p.count = 2),
                "left after",
            ),
            (
                "lengths cut",
                with(&good, |p| p.lengths.truncate(2)),
                "announces",
            ),
            (
                "length too long",
                with(&good, |p| p.lengths[2] = 9),
                "runs past",
            ),
            (
                "length too short",
                with(&good, |p| p.lengths[2] = 1),
                "inside a UTF-8 character",
            ),
            (
                "blob too long",
                with(&good, |p| p.pieces.push('x')),
                "left after",
            ),
            (
                "invalid UTF-8",
                with(&good, |p| bytes_of(p)[4] = 0xff),
                "not UTF-8",
            ),
            (
                "scores cut",
                with(&good, |p| p.scores.truncate(p.scores.len() - 1)),
                "end inside",
            ),
            (
                "extra score",
                with(&good, |p| p.scores.push(0)),
                "more than the 3",
            ),
            (
                "open varint",
                with(&good, |p| *p.scores.last_mut().unwrap() |= 0x80),
                "end inside",
            ),
            (
                "varint over 32 bits",
                with(&good, |p| {
                    drop(p.scores.splice(1..2, [0xff, 0xff, 0xff, 0xff, 0x1f]))
                }),
                "over 32 bits",
            ),
            (
                "varint over 64 bits",
                with(&good, |p| {
                    p.score_type = ScoreType::F64;
                    p.corrections.clear();
                    drop(p.scores.splice(1..2, [0xff; 10]));
                }),
                "over 64 bits",
            ),
            (
                "length over 16 bits",
                with(&good, |p| drop(p.lengths.splice(0..1, [0x80, 0x80, 0x04]))),
                "over 16 bits",
            ),
            (
                "corrections missing",
                with(&good, |p| p.corrections.clear()),
                "need 1",
            ),
            (
                "corrections with f64",
                with(&good, |p| p.score_type = ScoreType::F64),
                "need 0",
            ),
            (
                "correction code 3",
                with(&good, |p| p.corrections[0] = 0b11_0000),
                "piece 2 is 3",
            ),
            (
                "not a number",
                with(&good, |p| {
                    p.count = 1;
                    p.lengths = vec![3];
                    p.pieces = "<s>".into();
                    p.scores.clear();
                    put_varint(&mut p.scores, zigzag(0x7fc0_0000));
                    p.corrections = vec![0];
                }),
                "is NaN",
            ),
            (
                "below zero",
                with(&good, |p| p.corrections[0] = 0b10),
                "is NaN",
            ),
        ];
        for (name, p, msg) in cases {
            match unpacked(&p) {
                Err(e) => assert!(e.contains(msg), "{name}: {e}"),
                Ok(v) => panic!("{name}: unpacked to {v:?}"),
            }
        }
    }

    #[test]
    fn varints_at_their_limits() {
        for (bits, v) in [(32, u32::MAX as u64), (64, u64::MAX), (16, 65_535), (64, 0)] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Varints::new(&b, "x").next(bits), Ok(v));
            // One more does not fit.
            if bits < 64 {
                let mut b = Vec::new();
                put_varint(&mut b, v + 1);
                assert!(Varints::new(&b, "x").next(bits).is_err());
            }
        }
        // Zero continuation bytes past the width are refused too.
        let padded = [0x80, 0x80, 0x80, 0x80, 0x80, 0];
        assert!(Varints::new(&padded, "x").next(32).is_err());
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 12345, -12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any vocabulary survives packing bit for bit: f32 scores, f32 scores one unit off
        /// either way (as printed to 16 digits), any f64.
        #[test]
        fn any_vocabulary_roundtrips(
            vocab in prop::collection::vec(("\\PC{0,6}", any::<f32>(), -1i64..=1, any::<f64>()), 0..40),
            f64_piece in any::<prop::sample::Index>(),
        ) {
            let f64_piece = f64_piece.index(vocab.len().max(1));
            let vocab: Vec<(String, f64)> = vocab
                .into_iter()
                .enumerate()
                .map(|(i, (p, a, off, b))| {
                    let near = f64::from_bits((a as f64).to_bits().wrapping_add(off as u64));
                    (p, if i == f64_piece { b } else { near })
                })
                .filter(|(_, s)| s.is_finite())
                .collect();
            let p = pack(vocab.iter().map(|(p, s)| (p.as_str(), *s)));
            let want: Vec<(String, u64)> = vocab.iter().map(|(p, s)| (p.clone(), s.to_bits())).collect();
            prop_assert_eq!(unpacked(&p), Ok(want));
        }

        /// Damaged arrays: an error or some vocabulary, never a panic.
        #[test]
        fn damaged_arrays_never_panic(
            flips in prop::collection::vec((0..4usize, any::<usize>(), any::<u8>()), 0..4),
            cuts in prop::collection::vec((0..4usize, any::<usize>()), 0..2),
            count_change in -2i64..3,
            f64_scores in any::<bool>(),
        ) {
            let vocab = [("<s>", 0.0), ("▁the", -3.25), ("漢字", -7.471577644348144), ("🙂", -12.0), ("x", -12.0)];
            let mut p = pack(vocab.into_iter());
            if f64_scores {
                p.score_type = ScoreType::F64;
            }
            p.count = (p.count as i64 + count_change).max(0) as usize;
            let mut pieces = std::mem::take(&mut p.pieces).into_bytes();
            for (which, at, byte) in flips {
                let a = match which {
                    0 => &mut p.lengths,
                    1 => &mut pieces,
                    2 => &mut p.scores,
                    _ => &mut p.corrections,
                };
                if !a.is_empty() {
                    let n = a.len();
                    a[at % n] = byte;
                }
            }
            for (which, at) in cuts {
                let a = match which {
                    0 => &mut p.lengths,
                    1 => &mut pieces,
                    2 => &mut p.scores,
                    _ => &mut p.corrections,
                };
                let n = a.len();
                a.truncate(at % (n + 1));
            }
            let _ = unpack(p.count as u64, &p.lengths, &pieces, &p.scores, p.score_type, &p.corrections)
                .and_then(|b| CompactUnigram::build(b, None, false));
        }
    }
}
