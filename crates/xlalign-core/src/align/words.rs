//! Words, and which subwords belong to which word.
//!
//! Links are reported between words, but the encoder sees subwords of one string. This module
//! builds that string and the word ranges in it, from either
//! - raw text ([`segment`]): Unicode word boundaries (UAX #29), whitespace dropped,
//!   punctuation kept as words of its own, scripts written without spaces (Han, kana, Thai,
//!   Lao, Khmer, Myanmar) cut into characters that [`merge_by_tokens`] later joins back into
//!   the pieces the tokenizer found; or
//! - pre-tokenised words ([`join`], [`pretokenized`]), as in gold alignment files: the words
//!   are joined the way the text would naturally be written (no space before a comma, none
//!   between Japanese words), because tokenising every word on its own gives each a `▁`, and
//!   XLM-R has no `▁,` or `▁。`-style pieces, so a bare `▁` token appears before most
//!   punctuation and CJK words and collects spurious links.
//!
//! [`WordMap::from_offsets`] then assigns each subword (by its byte range in the string) to
//! the word it overlaps most, or to all the adjacent CJK words it spans.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};
pub use crate::script::{is_cjk, is_han, is_hiragana, is_kana, is_katakana, is_unspaced_script};

/// One word, located in [`Segmented::text`].
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Word {
    pub text: String,
    /// Byte range in the segmented text.
    pub start: usize,
    pub end: usize,
    /// The same range in `char`s (Unicode scalar values): what `Array.from(text)` or
    /// Python's `str` indexes.
    pub char_start: usize,
    pub char_end: usize,
    /// The same range in UTF-16 code units: what JavaScript's `String.prototype.slice`
    /// takes (a character outside the Basic Multilingual Plane counts two).
    pub utf16_start: usize,
    pub utf16_end: usize,
}

/// The string to encode and its words, in order and non-overlapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segmented {
    /// For raw input the input itself; for pre-tokenised input the joined string.
    pub text: String,
    pub words: Vec<Word>,
}

impl Segmented {
    pub fn len(&self) -> usize {
        self.words.len()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
    pub fn word_texts(&self) -> Vec<&str> {
        self.words.iter().map(|w| w.text.as_str()).collect()
    }
}

/// When to write pre-tokenised CJK words without a space between them.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CjkJoin {
    /// Join when the sentence contains kana (Japanese), keep spaces otherwise (Chinese).
    /// Measured with multilingual-e5-small, layer 7, softmax 0.3: Japanese (jaen) AER 52.8
    /// spaced → 46.5 joined; Chinese (zhen) 23.0 spaced → 27.0 joined. Spaced CJK words
    /// become `▁` + word, and the bare `▁` tokens (38–41 % of the tokens) are simply dropped,
    /// which costs Chinese nothing; joined text gives better context but pieces that cross
    /// the gold word boundaries (11 % of Japanese tokens, 6 % of Chinese), and for Chinese the
    /// second effect wins.
    #[default]
    Auto,
    Always,
    Never,
}

/// How raw text in kana is cut before [`merge_by_tokens`].
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KanaSplit {
    /// One word per character (grapheme), like Han; [`merge_by_tokens`] then rebuilds words
    /// from the tokenizer's pieces, so the model's own segmentation decides. Word-boundary
    /// agreement with the KyTea segmentation of the Japanese gold set (F1): 80.1 after
    /// merging (84.0 before, where every character boundary counts).
    #[default]
    Char,
    /// Runs of hiragana and runs of katakana stay together (UAX #29 keeps katakana runs,
    /// this also keeps hiragana runs), which reads better when no tokens are at hand but
    /// glues particles to words (`はとても`): boundary F1 76.4, 77.7 after merging.
    Run,
}

/// Options for building words.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct WordOptions {
    /// Pre-tokenised input: when CJK words are joined without spaces.
    pub cjk_join: CjkJoin,
    /// Raw input: how kana is cut.
    pub kana: KanaSplit,
}

/// Whitespace, controls and invisible format characters: zero-width spaces and joiners, the
/// bidirectional marks, embeddings and isolates of right-to-left text, word joiners, the
/// byte-order mark and the soft hyphen.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Invisible characters never make a word.
fn is_blank(s: &str) -> bool {
    s.chars().all(is_invisible)
}

/// `(start, end)` without the invisible characters at its edges (UAX #29 keeps a format
/// character such as a right-to-left mark with the word before it); inside a word they
/// stay (a zero-width non-joiner in a Persian word, a joiner in an emoji sequence).
fn trim_invisible(text: &str, (start, end): (usize, usize)) -> (usize, usize) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start_matches(is_invisible).len();
    let trail = piece.len() - piece.trim_end_matches(is_invisible).len();
    (start + lead, end - trail)
}

/// Raw text → words (byte and char offsets in `text`). Punctuation is its own word; text in
/// scripts without spaces comes out one character (grapheme) per word, except kana runs with
/// [`KanaSplit::Run`]; call [`merge_by_tokens`] once the text is tokenised to join characters
/// that share a subword.
pub fn segment(text: &str, opts: &WordOptions) -> Segmented {
    // (start, end) byte ranges.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (start, piece) in text.split_word_bound_indices() {
        if is_blank(piece) {
            continue;
        }
        let (start, end) = trim_invisible(text, (start, start + piece.len()));
        let piece = &text[start..end];
        if piece.chars().any(is_unspaced_script) {
            // UAX #29 already splits Han, hiragana and Thai per character/grapheme but keeps
            // katakana runs (and mixed runs such as "ＡＢＣ") together; cut to graphemes here
            // and let the run mode below glue kana back.
            for (off, g) in piece.grapheme_indices(true) {
                spans.push((start + off, start + off + g.len()));
            }
        } else {
            spans.push((start, start + piece.len()));
        }
    }
    if opts.kana == KanaSplit::Run {
        spans = merge_kana_runs(text, spans);
    }
    Segmented {
        text: text.to_owned(),
        words: words_from_spans(text, &spans),
    }
}

fn merge_kana_runs(text: &str, spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let class = |s: &str| {
        if !s.is_empty() && s.chars().all(is_hiragana) {
            1
        } else if !s.is_empty() && s.chars().all(is_katakana) {
            2
        } else {
            0
        }
    };
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        if let Some(last) = out.last_mut() {
            let c = class(&text[s..e]);
            if c != 0 && last.1 == s && class(&text[last.0..last.1]) == c {
                last.1 = e;
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

/// Builds [`Word`]s for sorted, non-overlapping byte spans of `text`.
fn words_from_spans(text: &str, spans: &[(usize, usize)]) -> Vec<Word> {
    let mut words = Vec::with_capacity(spans.len());
    // Code points and UTF-16 units before the current byte position.
    let (mut byte, mut chars, mut units) = (0usize, 0usize, 0usize);
    let count = |s: &str| (s.chars().count(), s.encode_utf16().count());
    for &(s, e) in spans {
        let (gap_chars, gap_units) = count(&text[byte..s]);
        chars += gap_chars;
        units += gap_units;
        let (len, len16) = count(&text[s..e]);
        words.push(Word {
            text: text[s..e].to_owned(),
            start: s,
            end: e,
            char_start: chars,
            char_end: chars + len,
            utf16_start: units,
            utf16_end: units + len16,
        });
        chars += len;
        units += len16;
        byte = e;
    }
    words
}

/// Joins words that a single subword spans, when they are adjacent characters of a script
/// written without spaces (see [`is_unspaced_script`]). `offsets` are the tokenizer's byte
/// ranges in `seg.text` (`None` for special tokens). Words elsewhere are never merged.
///
/// After this, every word of such a script owns at least one subword, and words follow the
/// tokenizer's pieces: raw "我们在中国" tokenised as `我们 在 中国` gives those three words.
pub fn merge_by_tokens(seg: &Segmented, offsets: &[Option<(usize, usize)>]) -> Segmented {
    let n = seg.words.len();
    let mut join_next = vec![false; n];
    let unspaced = |w: &Word| w.text.chars().all(is_unspaced_script);
    for &(s, e) in offsets.iter().flatten() {
        let first = seg.words.partition_point(|w| w.end <= s);
        let mut last = first;
        while last < n && seg.words[last].start < e {
            last += 1;
        }
        // Words first..last overlap the token.
        if last - first < 2 {
            continue;
        }
        let group = &seg.words[first..last];
        let mergeable =
            group.iter().all(unspaced) && group.windows(2).all(|p| p[0].end == p[1].start);
        if mergeable {
            join_next[first..last - 1]
                .iter_mut()
                .for_each(|j| *j = true);
        }
    }
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(n);
    for (k, w) in seg.words.iter().enumerate() {
        match spans.last_mut() {
            Some(last) if k > 0 && join_next[k - 1] => last.1 = w.end,
            _ => spans.push((w.start, w.end)),
        }
    }
    Segmented {
        text: seg.text.clone(),
        words: words_from_spans(&seg.text, &spans),
    }
}

/// Splits a pre-tokenised line on whitespace and [`join`]s the words.
pub fn pretokenized(line: &str, opts: &WordOptions) -> Result<Segmented> {
    let words: Vec<&str> = line.split_whitespace().collect();
    join(&words, opts)
}

/// Closing punctuation: no space before a word made only of these.
const CLOSERS: &str = ",.;:!?)]}%…’”»\u{0964}\u{0965}、。，．！？：；）」』】〕〉》〗〙〛｝］｠";
/// Opening punctuation: no space after a word made only of these.
const OPENERS: &str = "([{“‘„«¿¡（「『【〔〈《〖〘〚｛［｟";
/// English clitics written as separate tokens (`it 's`, `do n't`).
const CLITICS: [&str; 8] = ["'s", "'re", "'ve", "'ll", "'d", "'m", "'t", "n't"];

fn all_in(word: &str, set: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| set.contains(c))
}

fn is_clitic(word: &str) -> bool {
    let w = word.to_lowercase().replace('’', "'");
    CLITICS.contains(&w.as_str())
}

/// French/Italian elision (`l'`, `qu'`, `dell'`): no space after.
fn is_elision(word: &str) -> bool {
    let Some(stem) = word.strip_suffix('\'').or_else(|| word.strip_suffix('’')) else {
        return false;
    };
    let stem_l = stem.to_lowercase();
    !stem.is_empty()
        && stem.chars().all(char::is_alphabetic)
        && (stem.chars().count() <= 2 || stem_l.ends_with("qu") || stem_l.ends_with("ll"))
}

/// How a word attaches to its neighbours.
#[derive(Clone, Copy, Default)]
struct Attach {
    /// No space before this word.
    left: bool,
    /// No space after this word.
    right: bool,
}

/// Decides attachments, tracking whether a straight quote is open so that `"` alternates
/// between opening and closing.
#[derive(Default)]
struct QuoteState {
    double_open: bool,
    single_open: bool,
}

impl QuoteState {
    fn attach(&mut self, word: &str, prev: Option<&str>) -> Attach {
        let opening = Attach {
            left: false,
            right: true,
        };
        let closing = Attach {
            left: true,
            right: false,
        };
        match word {
            "\"" => {
                self.double_open = !self.double_open;
                return if self.double_open { opening } else { closing };
            }
            // German „…“ closes with “; English “…” opens with it.
            "“" if self.double_open => {
                self.double_open = false;
                return closing;
            }
            "“" | "„" => {
                self.double_open = true;
                return opening;
            }
            "”" => {
                self.double_open = false;
                return closing;
            }
            "'" => {
                if self.single_open {
                    self.single_open = false;
                    return closing;
                }
                // "the countries ' relations": a possessive, not a quote.
                if prev.is_some_and(|p| p.ends_with(['s', 'S'])) {
                    return closing;
                }
                self.single_open = true;
                return opening;
            }
            _ => {}
        }
        Attach {
            left: all_in(word, CLOSERS) || is_clitic(word),
            right: all_in(word, OPENERS) || is_elision(word),
        }
    }
}

/// Pre-tokenised words → one natural string plus each word's range in it (see the module
/// docs for why). Spaces are left out before closing punctuation and clitics (`,` `.` `)` `”`
/// `'s` `n't` …), after opening punctuation and elisions (`(` `“` `l'` …), and between CJK
/// characters when [`WordOptions::cjk_join`] says so (also between CJK and punctuation).
/// Straight quotes alternate between opening and closing.
///
/// Empty words are refused: they could never be aligned and usually mean a splitting bug.
pub fn join<S: AsRef<str>>(words: &[S], opts: &WordOptions) -> Result<Segmented> {
    if let Some(k) = words.iter().position(|w| w.as_ref().trim().is_empty()) {
        return Err(Error::Input(format!(
            "word {k} is empty or only whitespace"
        )));
    }
    let join_cjk = match opts.cjk_join {
        CjkJoin::Always => true,
        CjkJoin::Never => false,
        CjkJoin::Auto => words.iter().any(|w| w.as_ref().chars().any(is_kana)),
    };
    let mut text = String::with_capacity(words.iter().map(|w| w.as_ref().len() + 1).sum());
    let mut spans = Vec::with_capacity(words.len());
    let mut quotes = QuoteState::default();
    let mut prev: Option<(&str, Attach)> = None;
    for w in words {
        let w = w.as_ref();
        let attach = quotes.attach(w, prev.map(|p| p.0));
        if let Some((p, pa)) = prev {
            let glued = pa.right || attach.left || (join_cjk && cjk_glue(p, w));
            if !glued {
                text.push(' ');
            }
        }
        spans.push((text.len(), text.len() + w.len()));
        text.push_str(w);
        prev = Some((w, attach));
    }
    let words = words_from_spans(&text, &spans);
    Ok(Segmented { text, words })
}

/// Whether two neighbouring words are written together in CJK text: both sides CJK, or CJK
/// next to punctuation (`漢字(かんじ)`); CJK next to Latin letters or digits keeps its space.
fn cjk_glue(prev: &str, next: &str) -> bool {
    let (Some(a), Some(b)) = (prev.chars().next_back(), next.chars().next()) else {
        return false;
    };
    let punct = |c: char| !c.is_alphanumeric() && !c.is_whitespace();
    (is_cjk(a) && is_cjk(b)) || (is_cjk(a) && punct(b)) || (punct(a) && is_cjk(b))
}

/// Which word(s) each subword belongs to.
///
/// Normally one word per subword: the one its byte range overlaps most. The exception is
/// text written without spaces (Japanese joined for encoding, raw CJK before
/// [`merge_by_tokens`]): there a piece such as `した` often spans two gold words (`し` `た`),
/// and giving it to one of them leaves the other without any subword (19 % of the words of
/// the Japanese gold set). Such a piece belongs to every adjacent CJK word it spans, listed in
/// [`WordMap::shared`]. Measured on jaen with softmax 0.3: AER 50.7 with one word per piece,
/// 46.5 with shared pieces; the European sets are unchanged (sharing never applies there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WordMap {
    /// One entry per token of the encoded sequence (specials and prefix included): the word
    /// the token overlaps most, `None` for tokens that take no part in alignment.
    pub word_of: Vec<Option<usize>>,
    /// Further (token, word) memberships of tokens spanning several adjacent CJK words,
    /// sorted; the token's [`Self::word_of`] entry is its first word.
    #[serde(default)]
    pub shared: Vec<(usize, usize)>,
    pub n_words: usize,
}

impl WordMap {
    /// Assigns each token to the word its byte range overlaps most (the first such word on a
    /// tie), and also to the other words it spans when all of them are adjacent (no space
    /// between) and written in CJK/unspaced scripts ([`is_cjk`], [`is_unspaced_script`]).
    /// Tokens without a range (`<s>`, `</s>`, prefix, a bare `▁`) or overlapping no word (a
    /// `▁` over a space) belong to no word and take no part in alignment.
    ///
    /// `words` must be in text order and non-overlapping, as [`segment`], [`join`] and
    /// [`merge_by_tokens`] produce them.
    pub fn from_offsets(offsets: &[Option<(usize, usize)>], words: &[Word]) -> Result<WordMap> {
        if let Some(k) = (1..words.len()).find(|&k| words[k].start < words[k - 1].end) {
            return Err(Error::Input(format!(
                "words {} and {k} overlap or are out of order ({}..{} then {}..{})",
                k - 1,
                words[k - 1].start,
                words[k - 1].end,
                words[k].start,
                words[k].end
            )));
        }
        if let Some(w) = words.iter().find(|w| w.start > w.end) {
            return Err(Error::Input(format!(
                "word `{}` has start {} after end {}",
                w.text, w.start, w.end
            )));
        }
        let cjk_word = |w: &Word| {
            !w.text.is_empty() && w.text.chars().all(|c| is_cjk(c) || is_unspaced_script(c))
        };
        let mut word_of = Vec::with_capacity(offsets.len());
        let mut shared = Vec::new();
        for (t, o) in offsets.iter().enumerate() {
            let Some((s, e)) = *o else {
                word_of.push(None);
                continue;
            };
            let first = words.partition_point(|w| w.end <= s);
            // Words first..last overlap the token (a zero-length word inside it counts too,
            // but never wins: its overlap is 0).
            let last = first + words[first..].iter().take_while(|w| w.start < e).count();
            let mut best: Option<(usize, usize)> = None;
            for (k, w) in words.iter().enumerate().take(last).skip(first) {
                let overlap = e.min(w.end).saturating_sub(s.max(w.start));
                if overlap > 0 && best.is_none_or(|(_, b)| overlap > b) {
                    best = Some((k, overlap));
                }
            }
            let best = best.map(|(k, _)| k);
            word_of.push(best);
            let group = &words[first..last];
            if let Some(b) = best {
                if group.len() > 1
                    && group.iter().all(cjk_word)
                    && group.windows(2).all(|p| p[0].end == p[1].start)
                {
                    shared.extend((first..last).filter(|&k| k != b).map(|k| (t, k)));
                }
            }
        }
        Ok(WordMap {
            word_of,
            shared,
            n_words: words.len(),
        })
    }

    /// All (token, word) memberships, sorted by token then word.
    pub fn memberships(&self) -> Vec<(usize, usize)> {
        let mut all: Vec<(usize, usize)> = self
            .word_of
            .iter()
            .enumerate()
            .filter_map(|(t, w)| w.map(|w| (t, w)))
            .chain(self.shared.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Words of each token (empty for tokens of no word).
    pub fn words_of_tokens(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.word_of.len()];
        for (t, w) in self.memberships() {
            if let Some(ws) = out.get_mut(t) {
                ws.push(w);
            }
        }
        out
    }

    /// Token positions of each word's subwords (shared ones included).
    pub fn subwords(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_words];
        for (t, w) in self.memberships() {
            if let Some(ts) = out.get_mut(w) {
                ts.push(t);
            }
        }
        out
    }

    /// Whether each word got at least one subword (words without one can never be linked).
    pub fn covered(&self) -> Vec<bool> {
        self.subwords().iter().map(|s| !s.is_empty()).collect()
    }

    pub(crate) fn check(&self, what: &str) -> Result<()> {
        let n_tokens = self.word_of.len();
        if let Some((t, w)) = self
            .memberships()
            .into_iter()
            .find(|&(t, w)| t >= n_tokens || w >= self.n_words)
        {
            return Err(Error::Input(format!(
                "{what}: token {t} is mapped to word {w}, but there are only {n_tokens} tokens and {} words",
                self.n_words
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(seg: &Segmented) -> Vec<&str> {
        seg.word_texts()
    }

    fn joined(words: &str, opts: WordOptions) -> String {
        pretokenized(words, &opts).unwrap().text
    }

    #[test]
    fn raw_latin_text_keeps_punctuation_and_offsets() {
        let s = segment("Hello, world! (It's 3.5%)", &WordOptions::default());
        assert_eq!(
            texts(&s),
            ["Hello", ",", "world", "!", "(", "It's", "3.5", "%", ")"]
        );
        for w in &s.words {
            assert_eq!(&s.text[w.start..w.end], w.text);
        }
        assert_eq!((s.words[2].start, s.words[2].end), (7, 12));
    }

    #[test]
    fn raw_char_offsets_differ_from_bytes() {
        let s = segment("Grüße, Jürgen — ok", &WordOptions::default());
        assert_eq!(texts(&s), ["Grüße", ",", "Jürgen", "—", "ok"]);
        let j = &s.words[2];
        assert_eq!((j.start, j.end), (9, 16));
        assert_eq!((j.char_start, j.char_end), (7, 13));
        let ok = &s.words[4];
        assert_eq!((ok.char_start, ok.char_end), (16, 18));
        let chars: Vec<char> = s.text.chars().collect();
        for w in &s.words {
            assert_eq!(
                chars[w.char_start..w.char_end].iter().collect::<String>(),
                w.text
            );
        }
    }

    #[test]
    fn utf16_offsets_count_astral_characters_twice() {
        // 😀 (U+1F600) and 𠀋 (U+2000B, Han extension B) take two UTF-16 units each.
        let s = segment("I 😀 𠀋𠀋 love ü 🇫🇷 x", &WordOptions::default());
        let units: Vec<u16> = s.text.encode_utf16().collect();
        for w in &s.words {
            assert_eq!(
                String::from_utf16(&units[w.utf16_start..w.utf16_end]).unwrap(),
                w.text
            );
        }
        let love = s.words.iter().find(|w| w.text == "love").unwrap();
        assert_eq!((love.char_start, love.utf16_start), (7, 10));
        let seg = pretokenized("𠀋 😀 , l' ami", &WordOptions::default()).unwrap();
        let units: Vec<u16> = seg.text.encode_utf16().collect();
        for w in &seg.words {
            assert_eq!(
                String::from_utf16(&units[w.utf16_start..w.utf16_end]).unwrap(),
                w.text
            );
        }
    }

    #[test]
    fn raw_cjk_is_one_char_per_word() {
        let s = segment("東京タワーは高い。我们在中国", &WordOptions::default());
        assert_eq!(
            texts(&s),
            [
                "東", "京", "タ", "ワ", "ー", "は", "高", "い", "。", "我", "们", "在", "中", "国"
            ]
        );
    }

    #[test]
    fn raw_kana_runs() {
        let r = segment(
            "東京タワーはとても高い",
            &WordOptions {
                kana: KanaSplit::Run,
                ..Default::default()
            },
        );
        assert_eq!(texts(&r), ["東", "京", "タワー", "はとても", "高", "い"]);
    }

    #[test]
    fn raw_blank_and_invisible_pieces_are_dropped() {
        let s = segment("  a\u{200B}\u{3000}b\t\n", &WordOptions::default());
        assert_eq!(texts(&s), ["a", "b"]);
        assert!(segment("", &WordOptions::default()).is_empty());
        assert!(segment(" \n\t ", &WordOptions::default()).is_empty());
    }

    #[test]
    fn bidirectional_marks_are_neither_words_nor_parts_of_words() {
        // An RLM alone and an LRM that UAX #29 keeps with the word before it; an isolate
        // around a word; a joiner inside an emoji sequence and a ZWNJ inside a Persian word
        // stay where they are.
        let s = segment(
            "\u{200F}שלום עולם\u{200E} \u{2067}abc\u{2069} 👨\u{200D}👩 می\u{200C}خواهم",
            &WordOptions::default(),
        );
        assert_eq!(
            texts(&s),
            ["שלום", "עולם", "abc", "👨\u{200D}👩", "می\u{200C}خواهم"]
        );
        for w in &s.words {
            assert_eq!(&s.text[w.start..w.end], w.text);
        }
    }

    #[test]
    fn raw_thai_keeps_graphemes_whole() {
        let s = segment("สวัสดี", &WordOptions::default());
        // Vowel marks stay with their consonant.
        assert_eq!(texts(&s), ["ส", "วั", "ส", "ดี"]);
    }

    #[test]
    fn merge_follows_the_tokens() {
        let seg = segment("我们在中国, ok", &WordOptions::default());
        assert_eq!(texts(&seg), ["我", "们", "在", "中", "国", ",", "ok"]);
        // Tokens: ▁我们 (0..6) 在 (6..9) 中国 (9..15) , (15..16) ▁ok (16..19, with the space).
        let offsets = [
            None,
            Some((0, 6)),
            Some((6, 9)),
            Some((9, 15)),
            Some((15, 16)),
            Some((16, 19)),
            None,
        ];
        let merged = merge_by_tokens(&seg, &offsets);
        assert_eq!(texts(&merged), ["我们", "在", "中国", ",", "ok"]);
        assert_eq!(
            (merged.words[2].char_start, merged.words[2].char_end),
            (3, 5)
        );
        let map = WordMap::from_offsets(&offsets, &merged.words).unwrap();
        assert_eq!(
            map.word_of,
            [None, Some(0), Some(1), Some(2), Some(3), Some(4), None]
        );
    }

    #[test]
    fn merge_leaves_spaced_words_alone() {
        // A token spanning "a," (letters + punctuation) must not merge those words.
        let seg = segment("a, 中", &WordOptions::default());
        let merged = merge_by_tokens(&seg, &[Some((0, 2)), Some((3, 6))]);
        assert_eq!(texts(&merged), ["a", ",", "中"]);
        // Nor two CJK words separated by a space.
        let seg = segment("中 国", &WordOptions::default());
        let merged = merge_by_tokens(&seg, &[Some((0, 7))]);
        assert_eq!(texts(&merged), ["中", "国"]);
    }

    #[test]
    fn join_attaches_punctuation() {
        let o = WordOptions::default();
        assert_eq!(
            joined("Hello , world ( again ) !", o),
            "Hello, world (again)!"
        );
        assert_eq!(joined("it 's 10 % , is n't it ?", o), "it's 10%, isn't it?");
        assert_eq!(
            joined("He said \" yes \" and \" no \" .", o),
            "He said \"yes\" and \"no\"."
        );
        assert_eq!(joined("„ Ja “ , sagte er", o), "„Ja“, sagte er");
        assert_eq!(joined("“ Yes ” , he said", o), "“Yes”, he said");
        assert_eq!(
            joined("l' homme qu' il dell' Alba", o),
            "l'homme qu'il dell'Alba"
        );
        assert_eq!(
            joined("the countries ' relations", o),
            "the countries' relations"
        );
        assert_eq!(
            joined("called ' island platform , ' and", o),
            "called 'island platform,' and"
        );
        assert_eq!(joined("« oui » ...", o), "«oui»...");
        assert_eq!(joined("a - b / c", o), "a - b / c");
    }

    #[test]
    fn join_cjk_auto_joins_japanese_only() {
        let o = WordOptions::default();
        assert_eq!(joined("これ は 日本 語 です 。", o), "これは日本語です。");
        assert_eq!(
            joined("『 荘子 』 の （ 教化 ） ２ 回", o),
            "『荘子』の（教化）２回"
        );
        // Latin words and digits in Japanese text keep their spaces; punctuation glues.
        assert_eq!(
            joined("Windows 版 は New York で", o),
            "Windows 版は New York で"
        );
        assert_eq!(joined("漢字 ( かんじ ) の ␣ 例", o), "漢字(かんじ)の␣例");
        // No kana: Chinese keeps spaces between words, but not before punctuation.
        assert_eq!(joined("哈尼 说 , 欧盟 承诺 。", o), "哈尼 说, 欧盟 承诺。");
        let always = WordOptions {
            cjk_join: CjkJoin::Always,
            ..o
        };
        assert_eq!(
            joined("哈尼 说 , 欧盟 承诺 。", always),
            "哈尼说,欧盟承诺。"
        );
        let never = WordOptions {
            cjk_join: CjkJoin::Never,
            ..o
        };
        assert_eq!(joined("これ は 日本 語", never), "これ は 日本 語");
    }

    #[test]
    fn join_spans_point_at_the_words() {
        let line = "Weil der \" Crémant \" , der hier 東京 に";
        let seg = pretokenized(line, &WordOptions::default()).unwrap();
        let expected: Vec<&str> = line.split(' ').collect();
        assert_eq!(texts(&seg), expected);
        let chars: Vec<char> = seg.text.chars().collect();
        for w in &seg.words {
            assert_eq!(&seg.text[w.start..w.end], w.text);
            assert_eq!(
                chars[w.char_start..w.char_end].iter().collect::<String>(),
                w.text
            );
        }
    }

    #[test]
    fn join_refuses_empty_words() {
        let e = join(&["a", "", "b"], &WordOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::Input(_)) && e.to_string().contains("word 1"),
            "{e}"
        );
        assert!(join::<&str>(&[], &WordOptions::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn word_map_overlap_rules() {
        let seg = pretokenized("Hello , wonderful world", &WordOptions::default()).unwrap();
        assert_eq!(seg.text, "Hello, wonderful world");
        let offsets = [
            None,           // <s>
            None,           // prefix
            Some((0, 5)),   // ▁Hello
            Some((5, 6)),   // ,
            Some((6, 7)),   // bare ▁ over the space: no word
            Some((7, 12)),  // wonder
            Some((12, 16)), // ful
            Some((15, 22)), // "l world": overlaps "wonderful" by 1, "world" by 5
            Some((20, 25)), // past the end of the text on one side: overlaps "world" only
            None,           // </s>
        ];
        let map = WordMap::from_offsets(&offsets, &seg.words).unwrap();
        assert_eq!(
            map.word_of,
            [
                None,
                None,
                Some(0),
                Some(1),
                None,
                Some(2),
                Some(2),
                Some(3),
                Some(3),
                None
            ]
        );
        assert_eq!(map.n_words, 4);
        assert_eq!(
            map.subwords(),
            vec![vec![2], vec![3], vec![5, 6], vec![7, 8]]
        );
        assert_eq!(map.covered(), vec![true; 4]);
        // Equal overlap ("lo" of Hello, "wo" of wonderful): the first word wins.
        let tie = WordMap::from_offsets(&[Some((3, 9))], &seg.words).unwrap();
        assert_eq!(tie.word_of, [Some(0)]);
        let later = WordMap::from_offsets(&[Some((4, 10))], &seg.words).unwrap();
        assert_eq!(later.word_of, [Some(2)]);
    }

    #[test]
    fn word_map_refuses_overlapping_words() {
        let w = |s, e| Word {
            text: String::new(),
            start: s,
            end: e,
            char_start: s,
            char_end: e,
            utf16_start: s,
            utf16_end: e,
        };
        assert!(WordMap::from_offsets(&[Some((0, 1))], &[w(0, 3), w(2, 5)]).is_err());
        assert!(WordMap::from_offsets(&[Some((0, 1))], &[w(3, 4), w(0, 2)]).is_err());
        let map = WordMap::from_offsets(&[Some((0, 1)), None], &[]).unwrap();
        assert_eq!(map.word_of, [None, None]);
        let bad = WordMap {
            word_of: vec![Some(2)],
            shared: vec![],
            n_words: 2,
        };
        assert!(bad
            .check("source")
            .unwrap_err()
            .to_string()
            .contains("token 0"));
        let bad = WordMap {
            word_of: vec![Some(0)],
            shared: vec![(3, 1)],
            n_words: 2,
        };
        assert!(bad
            .check("source")
            .unwrap_err()
            .to_string()
            .contains("token 3"));
    }

    #[test]
    fn tokens_spanning_joined_cjk_words_are_shared() {
        let seg = pretokenized("説明 し た 。 Hello , world", &WordOptions::default()).unwrap();
        assert_eq!(seg.text, "説明した。 Hello, world");
        // Pieces: 説明 (0..6), した (6..12) over two words, 。 (12..15), ▁Hello (16..21), ","
        // (21..22), a made-up "o," (20..22) spanning a Latin word and a comma, ▁world.
        let offsets = [
            None,
            Some((0, 6)),
            Some((6, 12)),
            Some((12, 15)),
            Some((16, 21)),
            Some((21, 22)),
            Some((20, 22)),
            Some((22, 28)),
        ];
        let map = WordMap::from_offsets(&offsets, &seg.words).unwrap();
        assert_eq!(
            map.word_of,
            [
                None,
                Some(0),
                Some(1),
                Some(3),
                Some(4),
                Some(5),
                Some(4),
                Some(6)
            ]
        );
        assert_eq!(map.shared, vec![(2, 2)]);
        assert_eq!(map.words_of_tokens()[2], vec![1, 2]);
        assert_eq!(map.subwords()[2], vec![2]);
        assert!(map.covered().iter().all(|&c| c));
        assert_eq!(map.memberships().len(), 8);
        // "。" and a kana word are adjacent CJK too; words split by a space are not.
        let map = WordMap::from_offsets(&[Some((9, 15))], &seg.words).unwrap();
        assert_eq!(
            (map.word_of.clone(), map.shared.clone()),
            (vec![Some(2)], vec![(0, 3)])
        );
        let spaced = pretokenized("中国 人", &WordOptions::default()).unwrap();
        let map = WordMap::from_offsets(&[Some((0, 10))], &spaced.words).unwrap();
        assert!(map.shared.is_empty());
    }
}
