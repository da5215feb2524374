//! Reading sentence pairs from what a visitor pastes or uploads: one pair a line as
//! `source ||| target` (the fast_align / awesome-align format) or `source<TAB>target`, read
//! as the CLI reads them ([`split_pair`]), or two files with one sentence a line.

use xlalign_core::pairs::{split_pair, PairLineError};

/// One pair and the line it came from (1-based), so problems and results can point back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub line: usize,
    pub src: String,
    pub tgt: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub pairs: Vec<Pair>,
    /// Lines that were not pairs, as messages naming the line.
    pub problems: Vec<String>,
}

/// Largest batch the page accepts: a few minutes of work on a CPU, and results that fit in
/// memory comfortably.
pub const MAX_PAIRS: usize = 20_000;
/// Longest sentence the page aligns. Longer texts still work in the core (window by window)
/// but take long and make an unreadable picture; document mode splits them into sentences.
pub const MAX_SENTENCE_CHARS: usize = 4000;

/// Why a sentence cannot be aligned as one side of a pair, if it cannot.
pub fn check_sentence(side: &str, text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > MAX_SENTENCE_CHARS {
        return Err(format!(
            "the {side} is {n} characters long; a pair takes up to {MAX_SENTENCE_CHARS} per side (use Document mode for whole texts)"
        ));
    }
    Ok(())
}

/// Problems listed individually before the rest are only counted.
const MAX_PROBLEMS: usize = 20;

/// Collects pairs and problems; problems past [`MAX_PROBLEMS`] are only counted.
#[derive(Default)]
struct Collector {
    out: Parsed,
    bad: usize,
}

impl Collector {
    fn problem(&mut self, line: usize, what: String) {
        self.bad += 1;
        if self.bad <= MAX_PROBLEMS {
            self.out.problems.push(format!("line {line}: {what}"));
        }
    }

    fn pair(&mut self, line: usize, src: &str, tgt: &str) {
        if src.is_empty() || tgt.is_empty() {
            return self.problem(line, PairLineError::EmptySide.to_string());
        }
        match check_sentence("source", src).and(check_sentence("target", tgt)) {
            Ok(()) => self.out.pairs.push(Pair {
                line,
                src: src.into(),
                tgt: tgt.into(),
            }),
            Err(e) => self.problem(line, e),
        }
    }

    fn finish(self) -> Parsed {
        finish(self.out, self.bad)
    }
}

/// Pairs from pasted text or a TSV / `|||` file. Blank lines are skipped.
pub fn parse_pairs(text: &str) -> Parsed {
    let mut c = Collector::default();
    for (i, line) in strip_bom(text).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match split_pair(line) {
            Ok((s, t)) => c.pair(i + 1, s, t),
            Err(e @ PairLineError::NoSeparator) => {
                c.problem(i + 1, format!("{e}: “{}”", preview(line)))
            }
            Err(e) => c.problem(i + 1, e.to_string()),
        }
    }
    c.finish()
}

/// Pairs from two parallel files (one sentence a line). Lines are matched by number, blank
/// lines included, so the two files must have the same number of lines.
pub fn zip_files(src: &str, tgt: &str) -> Parsed {
    let s: Vec<&str> = strip_bom(src).lines().collect();
    let t: Vec<&str> = strip_bom(tgt).lines().collect();
    let mut c = Collector::default();
    if s.len() != t.len() {
        c.out.problems.push(format!(
            "the source file has {} lines and the target file {}: they must be parallel (one sentence a line, same order)",
            s.len(),
            t.len()
        ));
        return c.out;
    }
    for (i, (a, b)) in s.iter().zip(&t).enumerate() {
        let (a, b) = (a.trim(), b.trim());
        if !(a.is_empty() && b.is_empty()) {
            c.pair(i + 1, a, b);
        }
    }
    c.finish()
}

fn finish(mut out: Parsed, bad: usize) -> Parsed {
    if bad > MAX_PROBLEMS {
        out.problems.push(format!(
            "… and {} more lines that are not pairs",
            bad - MAX_PROBLEMS
        ));
    }
    if out.pairs.len() > MAX_PAIRS {
        out.problems.push(format!(
            "{} pairs: only the first {MAX_PAIRS} are aligned (split the file to do the rest)",
            out.pairs.len()
        ));
        out.pairs.truncate(MAX_PAIRS);
    }
    out
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// The start of a line, for messages.
pub fn preview(s: &str) -> String {
    const N: usize = 40;
    let mut it = s.chars();
    let head: String = it.by_ref().take(N).collect();
    if it.next().is_some() {
        head + "…"
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_separators_and_blank_lines() {
        let p = parse_pairs("\u{feff}Hallo Welt ||| Hello world\n\n  \nGuten Tag\tGood day\r\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            p.pairs,
            vec![
                Pair {
                    line: 1,
                    src: "Hallo Welt".into(),
                    tgt: "Hello world".into()
                },
                Pair {
                    line: 4,
                    src: "Guten Tag".into(),
                    tgt: "Good day".into()
                },
            ]
        );
    }

    #[test]
    fn triple_bar_wins_over_tab() {
        let p = parse_pairs("a\tb ||| c");
        assert_eq!(p.pairs[0].src, "a\tb");
        assert_eq!(p.pairs[0].tgt, "c");
    }

    #[test]
    fn a_second_separator_is_a_problem() {
        let p = parse_pairs("a ||| b ||| c\nx\ty\tz\n");
        assert!(p.pairs.is_empty());
        assert!(
            p.problems[0].starts_with("line 1: 2 `|||` separators"),
            "{:?}",
            p.problems
        );
        assert!(
            p.problems[1].starts_with("line 2: 2 tab separators"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn bad_lines_are_named_and_counted() {
        let mut text = String::from("ok ||| fine\nno separator here\n ||| only target\n");
        for _ in 0..30 {
            text += "junk\n";
        }
        let p = parse_pairs(&text);
        assert_eq!(p.pairs.len(), 1);
        assert!(
            p.problems[0].starts_with("line 2: no ` ||| `"),
            "{}",
            p.problems[0]
        );
        assert_eq!(p.problems[1], "line 3: one side is empty");
        assert_eq!(p.problems.len(), MAX_PROBLEMS + 1);
        assert!(
            p.problems.last().unwrap().contains("12 more"),
            "{:?}",
            p.problems.last()
        );
    }

    #[test]
    fn two_files_zip_by_line() {
        let p = zip_files("eins\n\nzwei\n", "one\n\ntwo\n");
        assert_eq!(p.pairs.len(), 2);
        assert_eq!(
            p.pairs[1],
            Pair {
                line: 3,
                src: "zwei".into(),
                tgt: "two".into()
            }
        );
        let p = zip_files("a\nb\n", "x\n");
        assert!(p.pairs.is_empty());
        assert!(
            p.problems[0].contains("2 lines") && p.problems[0].contains("target file 1"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn overlong_sentences_are_refused() {
        let long = "a".repeat(MAX_SENTENCE_CHARS + 1);
        let p = parse_pairs(&format!("{long} ||| b\nok ||| fine\n"));
        assert_eq!(p.pairs.len(), 1);
        assert!(
            p.problems[0].starts_with("line 1: the source is 4001 characters"),
            "{:?}",
            p.problems
        );
        assert!(check_sentence("target", &"ü".repeat(MAX_SENTENCE_CHARS)).is_ok());
    }

    #[test]
    fn too_many_pairs_are_cut() {
        let text = "a ||| b\n".repeat(MAX_PAIRS + 5);
        let p = parse_pairs(&text);
        assert_eq!(p.pairs.len(), MAX_PAIRS);
        assert!(p.problems[0].contains(&format!("{} pairs", MAX_PAIRS + 5)));
    }

    #[test]
    fn preview_cuts_long_lines() {
        assert_eq!(preview("short"), "short");
        let long = "ä".repeat(50);
        assert_eq!(preview(&long).chars().count(), 41);
    }
}
