//! Which scripts are written without spaces: the one table behind word segmentation
//! ([`crate::align::words`]) and the joining of sentences (the demo's document mode).
//!
//! Han (the unified ideographs with extensions A–I, the compatibility ideographs and their
//! supplement), kana, Thai, Lao, Khmer and Myanmar write no space between words; Chinese and
//! Japanese also none between sentences, whereas Thai, Lao, Khmer and Myanmar put a space
//! there. Hangul is written with spaces between words and is in neither set.

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = c as u32;
    ranges.iter().any(|&(a, b)| (a..=b).contains(&c))
}

/// Han ideographs, including the iteration mark 々 and ideographic zero 〇.
pub fn is_han(c: char) -> bool {
    in_ranges(
        c,
        &[
            (0x3005, 0x3005),
            (0x3007, 0x3007),
            (0x303B, 0x303B),
            (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF),
            (0xF900, 0xFAFF),
            (0x20000, 0x2FA1F),
            (0x30000, 0x323AF),
        ],
    )
}

pub fn is_hiragana(c: char) -> bool {
    in_ranges(c, &[(0x3041, 0x309F), (0x1B001, 0x1B11F)])
}

/// Katakana (full- and half-width), including the prolonged sound mark ー and ・.
pub fn is_katakana(c: char) -> bool {
    in_ranges(
        c,
        &[
            (0x30A0, 0x30FF),
            (0x31F0, 0x31FF),
            (0xFF66, 0xFF9F),
            (0x1B000, 0x1B000),
        ],
    )
}

pub fn is_kana(c: char) -> bool {
    is_hiragana(c) || is_katakana(c)
}

/// Characters of scripts written without spaces between words, whose word boundaries UAX #29
/// cannot find (it falls back to one unit per character or grapheme).
pub fn is_unspaced_script(c: char) -> bool {
    is_han(c)
        || is_kana(c)
        || in_ranges(
            c,
            &[
                (0x0E00, 0x0E7F), // Thai
                (0x0E80, 0x0EFF), // Lao
                (0x1000, 0x109F), // Myanmar
                (0x1780, 0x17FF), // Khmer
                (0x19E0, 0x19FF), // Khmer symbols
            ],
        )
}

/// Characters that sit between CJK words without spaces: Han, kana, CJK punctuation and
/// full-width forms, and `␣` (U+2423), which the gold files use for an ideographic space.
pub fn is_cjk(c: char) -> bool {
    is_han(c)
        || is_kana(c)
        || c == '\u{2423}'
        || in_ranges(
            c,
            &[
                (0x3000, 0x303F),
                (0xFE30, 0xFE4F),
                (0xFF00, 0xFF65),
                (0xFFE0, 0xFFEE),
            ],
        )
}

/// Whether text ending in `c` is continued without a space (how two sentences are written as
/// one text): after Han, kana, CJK punctuation and full-width forms ([`is_cjk`]).
pub fn no_space_after(c: char) -> bool {
    is_cjk(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_with_its_extensions() {
        for c in [
            '中',
            '々',
            '〇',
            '\u{3400}', // extension A
            '\u{F900}', // compatibility ideograph
            '\u{20000}',
            '\u{2A700}',
            '\u{2B740}',
            '\u{2B820}',
            '\u{2CEB0}', // B–F
            '\u{2EBF0}', // I
            '\u{2F800}', // compatibility supplement
            '\u{30000}',
            '\u{31350}', // G, H
        ] {
            assert!(is_han(c), "{:X}", c as u32);
            assert!(is_unspaced_script(c) && is_cjk(c) && no_space_after(c));
        }
        for c in ['a', 'ä', '한', '\u{2FFFF}'] {
            assert!(!is_han(c), "{:X}", c as u32);
        }
    }

    #[test]
    fn unspaced_scripts() {
        for c in ['ひ', 'カ', 'ｶ', 'ก', 'ກ', 'ក', 'က'] {
            assert!(is_unspaced_script(c), "{c}");
        }
        for c in ['a', 'я', 'ह', '한', ' '] {
            assert!(!is_unspaced_script(c), "{c}");
        }
    }

    #[test]
    fn sentences_join_without_a_space_after_cjk_only() {
        for c in ['。', '？', '好', 'す', '」'] {
            assert!(no_space_after(c), "{c}");
        }
        // Thai and Korean put a space between sentences.
        for c in ['.', '?', 'ค', '다', '।'] {
            assert!(!no_space_after(c), "{c}");
        }
    }
}
