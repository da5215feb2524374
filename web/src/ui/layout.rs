//! Where the alignment picture puts its words, for a given width: the two-row picture
//! (source words in a row on top, target words below) when both rows fit, else two columns
//! (source words down the left, target words down the right), whose length becomes height so
//! that a sentence of any length fits the width. Pure geometry over measured word widths, so
//! it is tested natively.

/// Horizontal padding inside a word box.
pub const PAD_X: f64 = 7.0;
/// Space between neighbouring boxes in a row.
const GAP: f64 = 8.0;
/// Height of a one-line word box.
pub const BOX_H: f64 = 28.0;
/// Height each further line adds to a word box broken over lines.
pub const LINE_H: f64 = 18.0;
/// Vertical space between the two rows, where the links run.
const ROW_GAP: f64 = 110.0;
/// Vertical space between boxes in a column.
const COL_GAP: f64 = 6.0;
/// Horizontal room for the links between the columns: at least enough to tell the lines
/// apart, at most enough to keep them readable as a bundle.
const LINK_MIN: f64 = 56.0;
const LINK_MAX: f64 = 240.0;
/// Narrowest column: a short word must still fit on one line.
const COL_MIN: f64 = 64.0;
pub const MARGIN: f64 = 10.0;

/// How the user asked the picture to be laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayoutPref {
    /// Rows when they fit the width, columns otherwise.
    #[default]
    Auto,
    Rows,
    Columns,
}

impl LayoutPref {
    pub const ALL: [LayoutPref; 3] = [LayoutPref::Auto, LayoutPref::Rows, LayoutPref::Columns];

    pub fn label(self) -> &'static str {
        match self {
            LayoutPref::Auto => "Automatic",
            LayoutPref::Rows => "Rows",
            LayoutPref::Columns => "Columns",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Rows,
    Columns,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Rows => "rows",
            Layout::Columns => "columns",
        }
    }
}

/// One word's box, and its text broken into the lines drawn in it (one line unless the word
/// is wider than its column). The lines joined give the word back.
#[derive(Clone, Debug, PartialEq)]
pub struct WordBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub lines: Vec<String>,
}

/// The picture: its size and every word's box.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    pub layout: Layout,
    pub width: f64,
    pub height: f64,
    pub src: Vec<WordBox>,
    pub tgt: Vec<WordBox>,
    /// Whether the picture was made to fit the width it was given (it may then be scaled
    /// down a little if the width shrinks, instead of scrolling).
    pub fitted: bool,
}

/// A side of the pair: its words, their measured text widths, and whether it is written
/// right to left (then a row is laid out from the right, as it is read).
pub struct Side<'a> {
    pub words: &'a [&'a str],
    pub widths: &'a [f64],
    pub rtl: bool,
}

/// Width of the two-row picture of these sides.
pub fn rows_width(src: &Side, tgt: &Side) -> f64 {
    row_len(src.widths).max(row_len(tgt.widths)) + 2.0 * MARGIN
}

fn row_len(widths: &[f64]) -> f64 {
    widths.iter().map(|w| w + 2.0 * PAD_X).sum::<f64>()
        + GAP * widths.len().saturating_sub(1) as f64
}

/// The layout `pref` asks for in `avail` pixels of width.
pub fn choose(pref: LayoutPref, src: &Side, tgt: &Side, avail: f64) -> Layout {
    match pref {
        LayoutPref::Rows => Layout::Rows,
        LayoutPref::Columns => Layout::Columns,
        LayoutPref::Auto if rows_width(src, tgt) <= avail => Layout::Rows,
        LayoutPref::Auto => Layout::Columns,
    }
}

/// Lays the pair out in `layout` for `avail` pixels of width; `measure` gives the drawn width
/// of a piece of text (used to break words too wide for their column).
pub fn lay_out(
    layout: Layout,
    src: &Side,
    tgt: &Side,
    avail: f64,
    measure: &dyn Fn(&str) -> f64,
) -> Geometry {
    match layout {
        Layout::Rows => rows(src, tgt, avail),
        Layout::Columns => columns(src, tgt, avail, measure),
    }
}

fn rows(src: &Side, tgt: &Side, avail: f64) -> Geometry {
    let width = rows_width(src, tgt);
    let place = |side: &Side, y: f64| {
        let len = row_len(side.widths);
        let x0 = (width - len) / 2.0;
        let n = side.words.len();
        let mut out = vec![None; n];
        let mut x = x0;
        let order: Box<dyn Iterator<Item = usize>> = if side.rtl {
            Box::new((0..n).rev())
        } else {
            Box::new(0..n)
        };
        for i in order {
            let w = side.widths[i] + 2.0 * PAD_X;
            out[i] = Some(WordBox {
                x,
                y,
                w,
                h: BOX_H,
                lines: vec![side.words[i].to_string()],
            });
            x += w + GAP;
        }
        out.into_iter()
            .map(|b| b.expect("every word placed"))
            .collect::<Vec<_>>()
    };
    let ty = MARGIN + BOX_H + ROW_GAP;
    Geometry {
        layout: Layout::Rows,
        width,
        height: ty + BOX_H + MARGIN,
        src: place(src, MARGIN),
        tgt: place(tgt, ty),
        fitted: width <= avail,
    }
}

/// Column widths (box widths) for two sides whose widest boxes are `s` and `t`, in `room`
/// pixels: each side its natural width if both fit, else the narrower side keeps its width
/// when it needs at most half, and the rest goes to the other.
fn split(s: f64, t: f64, room: f64) -> (f64, f64) {
    let room = room.max(2.0 * COL_MIN);
    if s + t <= room {
        (s, t)
    } else if s <= room / 2.0 {
        (s, room - s)
    } else if t <= room / 2.0 {
        (room - t, t)
    } else {
        (room / 2.0, room / 2.0)
    }
}

fn columns(src: &Side, tgt: &Side, avail: f64, measure: &dyn Fn(&str) -> f64) -> Geometry {
    let widest = |side: &Side| side.widths.iter().copied().fold(0.0, f64::max) + 2.0 * PAD_X;
    let (sw, tw) = split(widest(src), widest(tgt), avail - 2.0 * MARGIN - LINK_MIN);
    let link = (avail - 2.0 * MARGIN - sw - tw).clamp(LINK_MIN, LINK_MAX);
    let width = sw + link + tw + 2.0 * MARGIN;

    // Each word's lines and box height, then the boxes stacked; the shorter column is spread
    // over the height of the longer, so that links between words at the same place in their
    // sentences stay level.
    let stack = |side: &Side, x: f64, col_w: f64| -> (Vec<WordBox>, f64) {
        let boxes: Vec<WordBox> = side
            .words
            .iter()
            .zip(side.widths)
            .map(|(word, &w)| {
                let lines = if w + 2.0 * PAD_X <= col_w {
                    vec![word.to_string()]
                } else {
                    break_word(word, col_w - 2.0 * PAD_X, measure)
                };
                let h = BOX_H + LINE_H * (lines.len() - 1) as f64;
                WordBox {
                    x,
                    y: 0.0,
                    w: col_w,
                    h,
                    lines,
                }
            })
            .collect();
        let natural =
            boxes.iter().map(|b| b.h).sum::<f64>() + COL_GAP * boxes.len().saturating_sub(1) as f64;
        (boxes, natural)
    };
    let (mut sb, sh) = stack(src, MARGIN, sw);
    let (mut tb, th) = stack(tgt, MARGIN + sw + link, tw);
    let inner = sh.max(th);
    for (boxes, natural) in [(&mut sb, sh), (&mut tb, th)] {
        let extra = if boxes.is_empty() {
            0.0
        } else {
            (inner - natural) / boxes.len() as f64
        };
        let mut y = MARGIN + extra / 2.0;
        for b in boxes.iter_mut() {
            b.y = y;
            y += b.h + COL_GAP + extra;
        }
    }
    Geometry {
        layout: Layout::Columns,
        width,
        height: inner + 2.0 * MARGIN,
        src: sb,
        tgt: tb,
        fitted: true,
    }
}

/// Breaks a word into lines of at most `max` pixels (at least one character a line), at
/// character boundaries: a long compound or URL in a narrow column.
pub fn break_word(word: &str, max: f64, measure: &dyn Fn(&str) -> f64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for c in word.chars() {
        line.push(c);
        if line.chars().count() > 1 && measure(&line) > max {
            line.pop();
            lines.push(std::mem::take(&mut line));
            line.push(c);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

impl Geometry {
    /// The path of a link from source word `s` to target word `t`: from the bottom of the
    /// source box to the top of the target box in rows, from the right edge of the source
    /// box to the left edge of the target box in columns.
    pub fn link_path(&self, s: usize, t: usize) -> String {
        let (a, b) = (&self.src[s], &self.tgt[t]);
        match self.layout {
            Layout::Rows => {
                let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
                let (x2, y2) = (b.x + b.w / 2.0, b.y);
                let ym = (y1 + y2) / 2.0;
                format!("M{x1:.1},{y1:.1} C{x1:.1},{ym:.1} {x2:.1},{ym:.1} {x2:.1},{y2:.1}")
            }
            Layout::Columns => {
                let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
                let (x2, y2) = (b.x, b.y + b.h / 2.0);
                let xm = (x1 + x2) / 2.0;
                format!("M{x1:.1},{y1:.1} C{xm:.1},{y1:.1} {xm:.1},{y2:.1} {x2:.1},{y2:.1}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8 px a character, like a 15 px proportional font on average.
    fn measure(s: &str) -> f64 {
        8.0 * s.chars().count() as f64
    }

    fn side<'a>(words: &'a [&'a str], widths: &'a mut Vec<f64>) -> Side<'a> {
        *widths = words.iter().map(|w| measure(w)).collect();
        Side {
            words,
            widths,
            rtl: false,
        }
    }

    fn sentence(n: usize) -> Vec<&'static str> {
        [
            "the",
            "parliament",
            "adopted",
            "a",
            "resolution",
            "on",
            "fisheries",
        ]
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
    }

    fn inside(b: &WordBox, g: &Geometry) -> bool {
        b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= g.width + 1e-9 && b.y + b.h <= g.height + 1e-9
    }

    #[test]
    fn short_pairs_keep_two_rows_and_long_ones_become_columns() {
        let (s, t) = (sentence(6), sentence(7));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (s, t) = (side(&s, &mut a), side(&t, &mut b));
        assert_eq!(choose(LayoutPref::Auto, &s, &t, 800.0), Layout::Rows);
        assert_eq!(choose(LayoutPref::Auto, &s, &t, 300.0), Layout::Columns);
        assert_eq!(choose(LayoutPref::Rows, &s, &t, 300.0), Layout::Rows);
        assert_eq!(choose(LayoutPref::Columns, &s, &t, 800.0), Layout::Columns);
    }

    #[test]
    fn columns_fit_the_width_for_any_length() {
        for (n, k, avail) in [
            (40, 50, 826.0),
            (50, 40, 330.0),
            (1, 90, 280.0),
            (3, 0, 400.0),
        ] {
            let (s, t) = (sentence(n), sentence(k));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (s, t) = (side(&s, &mut a), side(&t, &mut b));
            let g = lay_out(Layout::Columns, &s, &t, avail, &measure);
            assert!(g.width <= avail, "{n}×{k} in {avail}: {} wide", g.width);
            assert!(g.src.iter().chain(&g.tgt).all(|b| inside(b, &g)));
            // Source left of target, each column top to bottom in sentence order, no overlaps.
            for col in [&g.src, &g.tgt] {
                for w in col.windows(2) {
                    assert!(w[1].y >= w[0].y + w[0].h, "boxes overlap");
                }
            }
            if let (Some(a), Some(b)) = (g.src.first(), g.tgt.first()) {
                assert!(a.x + a.w < b.x);
            }
        }
    }

    #[test]
    fn a_word_wider_than_its_column_is_broken_into_lines_that_join_to_it() {
        let s = ["Fischereipartnerschaftsabkommen", "mit"];
        let t = ["fisheries", "partnership", "agreement", "with"];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (s, t) = (side(&s, &mut a), side(&t, &mut b));
        let g = lay_out(Layout::Columns, &s, &t, 300.0, &measure);
        let long = &g.src[0];
        assert!(long.lines.len() > 1);
        assert_eq!(long.lines.concat(), "Fischereipartnerschaftsabkommen");
        assert!(long
            .lines
            .iter()
            .all(|l| measure(l) <= long.w - 2.0 * PAD_X));
        assert_eq!(long.h, BOX_H + LINE_H * (long.lines.len() - 1) as f64);
        assert_eq!(g.src[1].lines, vec!["mit"]);
    }

    #[test]
    fn links_run_between_their_words_boxes() {
        let (s, t) = (sentence(5), sentence(9));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (s, t) = (side(&s, &mut a), side(&t, &mut b));
        for layout in [Layout::Rows, Layout::Columns] {
            let g = lay_out(layout, &s, &t, 400.0, &measure);
            let d = g.link_path(4, 8);
            let nums: Vec<f64> = d
                .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().unwrap())
                .collect();
            let (start, end) = ((nums[0], nums[1]), (nums[6], nums[7]));
            let on = |b: &WordBox, (x, y): (f64, f64)| {
                x >= b.x - 0.1 && x <= b.x + b.w + 0.1 && y >= b.y - 0.1 && y <= b.y + b.h + 0.1
            };
            assert!(on(&g.src[4], start), "{layout:?}: {d}");
            assert!(on(&g.tgt[8], end), "{layout:?}: {d}");
        }
    }

    #[test]
    fn right_to_left_rows_start_on_the_right() {
        let s = ["a", "b", "c"];
        let mut a = Vec::new();
        let mut s = side(&s, &mut a);
        s.rtl = true;
        let g = lay_out(Layout::Rows, &s, &s, 800.0, &measure);
        assert!(g.src[0].x > g.src[2].x);
    }

    #[test]
    fn break_word_keeps_at_least_a_character_a_line() {
        assert_eq!(break_word("abc", 1.0, &measure), vec!["a", "b", "c"]);
        assert_eq!(break_word("", 10.0, &measure), vec![""]);
    }
}
