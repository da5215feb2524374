//! Reading sentence pairs: two parallel files (`--src`/`--tgt`) or one file of
//! `source ||| target` (or `source<TAB>target`) lines, stdin by default, read as
//! [`xlalign_core::pairs::split_pair`] says.

use std::path::PathBuf;

use anyhow::Result;
use xlalign_core::pairs::split_pair;

use crate::input;

#[derive(clap::Args, Clone)]
pub struct PairInput {
    /// Source sentences, one per line (use with --tgt).
    #[arg(long, requires = "tgt", conflicts_with = "input")]
    pub src: Option<PathBuf>,
    /// Target sentences, one per line, parallel to --src.
    #[arg(long, requires = "src", conflicts_with = "input")]
    pub tgt: Option<PathBuf>,
    /// `source ||| target` lines, or `source<TAB>target` (default: stdin).
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// A pair read from the input, or why that line could not be read as one.
pub type PairLine = std::result::Result<(String, String), String>;

/// The input a pair was read from, as it was read: one line, or a line of each parallel
/// file (line endings removed). `score --keep` writes kept pairs back in this form.
pub enum RawPair {
    Line(String),
    Parallel(String, String),
}

/// Yields pairs in input order, one per input line. A line that is not a pair (see
/// [`split_pair`]) or not UTF-8 is an `Err` for that line only; unreadable input or files of different line
/// counts stop the iteration with an error.
pub fn read_pairs(p: &PairInput) -> Result<Box<dyn Iterator<Item = Result<PairLine>>>> {
    Ok(Box::new(
        read_raw_pairs(p)?.map(|r| r.map(|(_, pair)| pair)),
    ))
}

/// Pairs with the input each came from, in input order.
pub type RawPairs = Box<dyn Iterator<Item = Result<(RawPair, PairLine)>>>;

/// As [`read_pairs`], with the input each pair came from.
pub fn read_raw_pairs(p: &PairInput) -> Result<RawPairs> {
    if let (Some(s), Some(t)) = (&p.src, &p.tgt) {
        let src = input::lines(input::open(Some(s))?, s.display().to_string());
        let mut tgt = input::lines(input::open(Some(t))?, t.display().to_string());
        let (sn, tn) = (s.display().to_string(), t.display().to_string());
        let mut src = src.fuse();
        let mut n = 0usize;
        return Ok(Box::new(std::iter::from_fn(move || {
            n += 1;
            match (src.next(), tgt.next()) {
                (None, None) => None,
                (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
                (Some(Ok(Ok(a))), Some(Ok(Ok(b)))) => {
                    Some(Ok((RawPair::Parallel(a.clone(), b.clone()), Ok((a, b)))))
                }
                // A line that is not UTF-8 is never kept, so its raw form is not needed.
                (Some(Ok(Err(e))), Some(Ok(_))) | (Some(Ok(_)), Some(Ok(Err(e)))) => Some(Ok((
                    RawPair::Parallel(String::new(), String::new()),
                    Err(e),
                ))),
                (Some(_), None) => Some(Err(anyhow::anyhow!(
                    "{tn} has fewer lines than {sn} (ends before line {n})"
                ))),
                (None, Some(_)) => Some(Err(anyhow::anyhow!(
                    "{sn} has fewer lines than {tn} (ends before line {n})"
                ))),
            }
        })));
    }
    let name = p
        .input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stdin".into());
    let lines = input::lines(input::open(p.input.as_deref())?, name);
    Ok(Box::new(lines.map(|l| {
        l.map(|l| {
            let Ok(l) = l else {
                // Not UTF-8: never kept, so its raw form is not needed.
                return (
                    RawPair::Line(String::new()),
                    l.map(|_| (String::new(), String::new())),
                );
            };
            let pair = split_pair(&l)
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .map_err(|e| e.to_string());
            (RawPair::Line(l), pair)
        })
    })))
}
