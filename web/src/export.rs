//! Batch results as files: Pharaoh links (one line per pair, what fast_align, awesome-align and
//! `xlalign align` write), JSON (everything, one object per pair) and CSV (the scores, for a
//! spreadsheet).
//!
//! Failed pairs keep their line in every format (an empty Pharaoh line, an `error` field, an
//! `error` column), so line n of an export is always pair n of the input.

use serde::Serialize;
use xlalign_core::pharaoh;
use xlalign_core::pipeline::PairAlignment;

use crate::pairs::Pair;
use crate::results::BatchItem;

/// Pharaoh links, one line per pair (`0-0 1-2 …`, word indices of the raw-text words).
pub fn pharaoh(rows: &[(&Pair, &BatchItem)]) -> String {
    let mut out = String::new();
    for (_, item) in rows {
        if let BatchItem::Ok(a) = item {
            out += &pharaoh::links_line(&a.links);
        }
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRow<'a> {
    line: usize,
    src: &'a str,
    tgt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alignment: Option<&'a PairAlignment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// A JSON array with one object per pair: input line, texts, and the alignment (words with
/// offsets, links with scores, sentence scores, word cosines) or the error. One pair per line,
/// each compact: a 10,000-pair batch is about a third of its pretty-printed size, and a line
/// is a pair for tools that read line by line.
pub fn json(rows: &[(&Pair, &BatchItem)]) -> String {
    let mut s = String::from("[");
    for (k, (p, item)) in rows.iter().enumerate() {
        let (alignment, error) = match item {
            BatchItem::Ok(a) => (Some(a), None),
            BatchItem::Err(e) => (None, Some(e.as_str())),
        };
        let row = JsonRow {
            line: p.line,
            src: &p.src,
            tgt: &p.tgt,
            alignment,
            error,
        };
        s.push_str(if k == 0 { "\n" } else { ",\n" });
        match serde_json::to_string(&row) {
            Ok(j) => s.push_str(&j),
            Err(e) => s.push_str(
                &serde_json::json!({ "line": p.line, "error": e.to_string() }).to_string(),
            ),
        }
    }
    s.push_str("\n]\n");
    s
}

/// One CSV row per pair: the scores, the links, and whether the pair was flagged as a likely
/// mistranslation (`flag_below`: sentence-cosine threshold).
pub fn csv(rows: &[(&Pair, &BatchItem)], flag_below: f32) -> String {
    let mut out =
        String::from("line,source,target,cosine,bertscore_f1,bertscore_src,bertscore_tgt,coverage,links,flagged,error\n");
    for (p, item) in rows {
        let cells: Vec<String> = match item {
            BatchItem::Ok(a) => {
                let s = &a.similarity;
                vec![
                    p.line.to_string(),
                    csv_field(&p.src),
                    csv_field(&p.tgt),
                    s.cosine.map(num).unwrap_or_default(),
                    num(s.bertscore.f1),
                    num(s.bertscore.src),
                    num(s.bertscore.tgt),
                    num(s.coverage.both),
                    csv_field(&pharaoh::links_line(&a.links)),
                    is_flagged(a, flag_below).to_string(),
                    String::new(),
                ]
            }
            BatchItem::Err(e) => {
                let mut v = vec![p.line.to_string(), csv_field(&p.src), csv_field(&p.tgt)];
                v.extend(std::iter::repeat_n(String::new(), 6));
                v.push("true".into());
                v.push(csv_field(e));
                v
            }
        };
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// Default for flagging likely mistranslations: multilingual-e5-small gives translations a
/// sentence cosine of 0.82–0.95 and unrelated sentences 0.72–0.80 (the built-in examples, and
/// each source paired with another example's target, measured with `xlalign similarity`).
pub const FLAG_BELOW: f32 = 0.81;

/// A pair whose sentence embeddings are less similar than `flag_below` is probably not a
/// translation of each other (see the README for how the default was chosen).
pub fn is_flagged(a: &PairAlignment, flag_below: f32) -> bool {
    a.similarity.cosine.is_some_and(|c| c < flag_below)
}

fn num(x: f32) -> String {
    format!("{x:.4}")
}

/// RFC 4180 quoting. A leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet
/// shows pasted text instead of running it as a formula.
pub fn csv_field(s: &str) -> String {
    let guarded;
    let s = if s.starts_with(['=', '+', '-', '@']) {
        guarded = format!("'{s}");
        guarded.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xlalign_core::align::{Coverage, GreedyMatch, Method, Word, WordLink};
    use xlalign_core::pipeline::SentenceScores;

    fn word(t: &str) -> Word {
        Word {
            text: t.into(),
            start: 0,
            end: t.len(),
            char_start: 0,
            char_end: t.chars().count(),
            utf16_start: 0,
            utf16_end: t.encode_utf16().count(),
        }
    }

    fn alignment(links: &[(usize, usize)], cosine: f32) -> PairAlignment {
        PairAlignment {
            src_words: vec![word("a"), word("b")],
            tgt_words: vec![word("x"), word("y")],
            links: links
                .iter()
                .map(|&(src, tgt)| WordLink {
                    src,
                    tgt,
                    score: 0.5,
                    prob: None,
                })
                .collect(),
            similarity: SentenceScores {
                cosine: Some(cosine),
                bertscore: GreedyMatch {
                    src: 0.5,
                    tgt: 0.25,
                    f1: 1.0 / 3.0,
                },
                coverage: Coverage {
                    src: 1.0,
                    tgt: 1.0,
                    both: 1.0,
                },
            },
            word_similarity: vec![],
            layer: 7,
            method: Method::Softmax,
        }
    }

    fn pair(line: usize, src: &str, tgt: &str) -> Pair {
        Pair {
            line,
            src: src.into(),
            tgt: tgt.into(),
        }
    }

    #[test]
    fn pharaoh_keeps_one_line_per_pair() {
        let (p1, p2, p3) = (pair(1, "a", "b"), pair(2, "c", "d"), pair(3, "e", "f"));
        let (a, e, b) = (
            BatchItem::Ok(alignment(&[(0, 0), (1, 1)], 0.9)),
            BatchItem::Err("too long".into()),
            BatchItem::Ok(alignment(&[(1, 0)], 0.9)),
        );
        assert_eq!(
            pharaoh(&[(&p1, &a), (&p2, &e), (&p3, &b)]),
            "0-0 1-1\n\n1-0\n"
        );
    }

    #[test]
    fn csv_quotes_and_flags() {
        let p1 = pair(4, "Er sagte: \"Ja, gern\"", "=SUM(A1)");
        let p2 = pair(5, "x", "y");
        let a = BatchItem::Ok(alignment(&[(0, 1)], 0.75));
        let e = BatchItem::Err("the source, sadly, is empty".into());
        let text = csv(&[(&p1, &a), (&p2, &e)], 0.82);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "4,\"Er sagte: \"\"Ja, gern\"\"\",'=SUM(A1),0.7500,0.3333,0.5000,0.2500,1.0000,0-1,true,"
        );
        assert_eq!(lines[2], "5,x,y,,,,,,,true,\"the source, sadly, is empty\"");
        assert!(!is_flagged(&alignment(&[], 0.9), 0.82));
    }

    #[test]
    fn json_has_alignment_or_error() {
        let p = pair(1, "a", "b");
        let a = BatchItem::Ok(alignment(&[(0, 0)], 0.9));
        let e = BatchItem::Err("bad".into());
        let v: serde_json::Value = serde_json::from_str(&json(&[(&p, &a), (&p, &e)])).unwrap();
        assert_eq!(v[0]["alignment"]["links"][0]["tgt"], 0);
        assert!(v[0].get("error").is_none());
        assert_eq!(v[1]["error"], "bad");
        assert!(v[1].get("alignment").is_none());
        // One pair per line between the brackets; no rows is an empty array.
        let text = json(&[(&p, &a), (&p, &e)]);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().nth(2).unwrap().starts_with("{\"line\":1,"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json(&[])).unwrap(),
            serde_json::json!([])
        );
    }
}
