//! One sentence pair per line of text: the one reading of a `source ||| target` line that the
//! CLI (`--input`), the demo (batch mode, pasting into the source box) and the package share.
//!
//! The rule, in order:
//! 1. A line with `|||` is split there (fast_align / awesome-align format; the spaces around
//!    it are optional). A second `|||` is an error: it would be ambiguous which one
//!    separates the sentences, and the format has exactly one.
//! 2. Otherwise a line with a tab is split there (two columns of a spreadsheet). A second tab
//!    is an error for the same reason (a third column).
//! 3. A line with neither is an error.
//!
//! Both sides are trimmed; an empty side is an error. Tabs inside a `|||` line are text.

use std::fmt;

use crate::error::Error;

/// The separator of the fast_align / awesome-align format.
pub const SEPARATOR: &str = "|||";

/// Why a line is not a sentence pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairLineError {
    /// Neither `|||` nor a tab.
    NoSeparator,
    /// More than one `|||` (or, without `|||`, more than one tab): how many.
    TooManySeparators {
        separator: &'static str,
        count: usize,
    },
    /// Nothing but spaces on one side.
    EmptySide,
}

impl fmt::Display for PairLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairLineError::NoSeparator => {
                f.write_str("no ` ||| ` or tab between source and target")
            }
            PairLineError::TooManySeparators { separator, count } => write!(
                f,
                "{count} {separator} separators: a line holds one pair (`source ||| target`)"
            ),
            PairLineError::EmptySide => f.write_str("one side is empty"),
        }
    }
}

impl std::error::Error for PairLineError {}

/// Splits one line into (source, target), trimmed; see the module documentation for the rule.
pub fn split_pair(line: &str) -> Result<(&str, &str), PairLineError> {
    let (src, tgt) = if line.contains(SEPARATOR) {
        let count = line.matches(SEPARATOR).count();
        if count > 1 {
            return Err(PairLineError::TooManySeparators {
                separator: "`|||`",
                count,
            });
        }
        line.split_once(SEPARATOR).expect("contains the separator")
    } else {
        let count = line.matches('\t').count();
        match count {
            0 => return Err(PairLineError::NoSeparator),
            1 => line.split_once('\t').expect("contains a tab"),
            _ => {
                return Err(PairLineError::TooManySeparators {
                    separator: "tab",
                    count,
                })
            }
        }
    };
    let (src, tgt) = (src.trim(), tgt.trim());
    if src.is_empty() || tgt.is_empty() {
        return Err(PairLineError::EmptySide);
    }
    Ok((src, tgt))
}

/// [`split_pair`] with the 1-based line number in the error (`line 31: no ` ||| ` or tab …`).
pub fn parse_pair_line(line_no: usize, line: &str) -> crate::Result<(&str, &str)> {
    split_pair(line).map_err(|e| Error::Input(format!("line {line_no}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triple_bar_with_or_without_spaces() {
        assert_eq!(
            split_pair("Das Haus ||| the house"),
            Ok(("Das Haus", "the house"))
        );
        assert_eq!(split_pair("a|||b"), Ok(("a", "b")));
        assert_eq!(split_pair("  a  |||\tb \r"), Ok(("a", "b")));
    }

    #[test]
    fn tab_when_there_is_no_triple_bar() {
        assert_eq!(
            split_pair("Guten Tag\tGood day"),
            Ok(("Guten Tag", "Good day"))
        );
        // `|||` wins: a tab on its side is part of the sentence.
        assert_eq!(split_pair("a\tb ||| c"), Ok(("a\tb", "c")));
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(
            split_pair("no separator here"),
            Err(PairLineError::NoSeparator)
        );
        assert_eq!(split_pair(""), Err(PairLineError::NoSeparator));
        assert_eq!(
            split_pair("a ||| b ||| c"),
            Err(PairLineError::TooManySeparators {
                separator: "`|||`",
                count: 2
            })
        );
        assert_eq!(
            split_pair("a\tb\tc"),
            Err(PairLineError::TooManySeparators {
                separator: "tab",
                count: 2
            })
        );
        assert_eq!(
            split_pair(" ||| only target"),
            Err(PairLineError::EmptySide)
        );
        assert_eq!(split_pair("only source\t "), Err(PairLineError::EmptySide));
        let e = split_pair("a ||| b ||| c").unwrap_err().to_string();
        assert!(e.starts_with("2 `|||` separators"), "{e}");
    }

    #[test]
    fn line_numbers_in_errors() {
        let e = parse_pair_line(31, "no separator").unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(
            e.to_string()
                .ends_with("line 31: no ` ||| ` or tab between source and target"),
            "{e}"
        );
        assert_eq!(parse_pair_line(1, "a ||| b").unwrap(), ("a", "b"));
    }
}
