//! Reading line-oriented input: files or stdin, invalid UTF-8 reported with its line number.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// Opens `path`, or stdin when `None` or `-`.
pub fn open(path: Option<&Path>) -> Result<Box<dyn BufRead>> {
    Ok(match path {
        None => Box::new(BufReader::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => Box::new(BufReader::new(std::io::stdin())),
        Some(p) => Box::new(BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    })
}

/// A line's text, or why it has none (it is not UTF-8; the message names the input, and the
/// caller the line): an error of that line only, which commands that go on past bad lines
/// report and skip.
pub type Line = std::result::Result<String, String>;

/// Iterates over lines (without the line ending). A line that is not UTF-8 is an inner error
/// naming it; the outer error is a read that failed, after which nothing more is read.
pub fn lines(reader: Box<dyn BufRead>, name: String) -> impl Iterator<Item = Result<Line>> {
    let mut reader = reader;
    let mut n = 0usize;
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        n += 1;
        match reader.by_ref().read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    buf.pop();
                }
                Some(Ok(String::from_utf8(buf).map_err(|e| {
                    format!(
                        "{name}: invalid UTF-8 at byte {}",
                        e.utf8_error().valid_up_to()
                    )
                })))
            }
            Err(e) => Some(Err(anyhow::anyhow!("{name} line {n}: {e}"))),
        }
    })
}
