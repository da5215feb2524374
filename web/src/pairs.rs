//! Reading sentence pairs from what a visitor pastes or uploads: one pair a line as
//! `source ||| target` (the fast_align / awesome-align format) or `source<TAB>target`, or two
//! files with one sentence a line.

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
/// Problems listed individually before the rest are only counted.
const MAX_PROBLEMS: usize = 20;

/// Splits one line into a pair: at the first `|||` if there is one, else at the first tab.
pub fn split_line(line: &str) -> Option<(&str, &str)> {
    let (s, t) = match line.split_once("|||") {
        Some(p) => p,
        None => line.split_once('\t')?,
    };
    Some((s.trim(), t.trim()))
}

/// Pairs from pasted text or a TSV / `|||` file. Blank lines are skipped.
pub fn parse_pairs(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut bad = 0usize;
    for (i, line) in strip_bom(text).lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match split_line(line) {
            Some((s, t)) if !s.is_empty() && !t.is_empty() => out.pairs.push(Pair {
                line: n,
                src: s.into(),
                tgt: t.into(),
            }),
            Some(_) => {
                bad += 1;
                if bad <= MAX_PROBLEMS {
                    out.problems.push(format!("line {n}: one side is empty"));
                }
            }
            None => {
                bad += 1;
                if bad <= MAX_PROBLEMS {
                    out.problems.push(format!(
                        "line {n}: no ` ||| ` or tab between source and target: “{}”",
                        preview(line)
                    ));
                }
            }
        }
    }
    finish(out, bad)
}

/// Pairs from two parallel files (one sentence a line). Lines are matched by number, blank
/// lines included, so the two files must have the same number of lines.
pub fn zip_files(src: &str, tgt: &str) -> Parsed {
    let s: Vec<&str> = strip_bom(src).lines().collect();
    let t: Vec<&str> = strip_bom(tgt).lines().collect();
    let mut out = Parsed::default();
    if s.len() != t.len() {
        out.problems.push(format!(
            "the source file has {} lines and the target file {}: they must be parallel (one sentence a line, same order)",
            s.len(),
            t.len()
        ));
        return out;
    }
    let mut bad = 0usize;
    for (i, (a, b)) in s.iter().zip(&t).enumerate() {
        let (a, b) = (a.trim(), b.trim());
        match (a.is_empty(), b.is_empty()) {
            (true, true) => {}
            (false, false) => out.pairs.push(Pair {
                line: i + 1,
                src: a.into(),
                tgt: b.into(),
            }),
            _ => {
                bad += 1;
                if bad <= MAX_PROBLEMS {
                    out.problems
                        .push(format!("line {}: one side is empty", i + 1));
                }
            }
        }
    }
    finish(out, bad)
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
