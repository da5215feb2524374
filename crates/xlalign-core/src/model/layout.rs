//! Where a model file's parts lie, for loading it in parts (the browser package's
//! progressive loading): which bytes must arrive before the first alignment and which can
//! come later, computed from the header alone.
//!
//! It lives in the core, not in the browser crate that uses it, so that it runs natively:
//! the header comes from a stranger's server, and the plan decides which byte ranges are
//! requested and copied, so it is fuzzed with the header reader (`fuzz/`, target
//! `gguf_header`) and every bound [`Layout`] promises is checked there.

use std::ops::Range;

use crate::gguf::GgufHeader;
use crate::model::{block_range, first_blocks, keys};

/// The word-embedding table's tensor: the one part of the file loaded row by row.
pub const TABLE: &str = "token_embd.weight";

/// Where the embedding rows are in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub offset: usize,
    pub row_bytes: usize,
    pub rows: usize,
}

impl Table {
    /// The byte after the table's last row (never overflows: a [`Table`] only comes from a
    /// tensor whose bytes the header checked against the file's length).
    pub fn end(&self) -> usize {
        self.offset + self.rows * self.row_bytes
    }

    /// The table's position, if its rows can be fetched one by one.
    pub fn of(h: &GgufHeader) -> Option<Table> {
        let t = h.tensors.iter().find(|t| t.name == TABLE)?;
        let rows = *t.shape.first()?;
        if rows == 0 || t.n_bytes % rows != 0 || t.shape.len() != 2 {
            return None;
        }
        Some(Table {
            offset: t.offset,
            row_bytes: t.n_bytes / rows,
            rows,
        })
    }
}

/// How a file is loaded in parts: `0..stop` (the header and the first rows) and
/// `table.end()..ready_end` (every other tensor the first alignment needs) before ready;
/// then the table's other rows, and the blocks from `first_blocks` on, each in its range.
///
/// A layout from [`Layout::plan`] keeps, for the header's `file_len`:
/// `table.offset ≤ stop ≤ table.end() ≤ ready_end ≤ file_len`, `first_blocks ≤
/// blocks.len()`, every block inside the file, and every block from `first_blocks` on at or
/// after `ready_end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub table: Table,
    pub stop: usize,
    pub ready_end: usize,
    pub first_blocks: usize,
    /// The byte range of every block.
    pub blocks: Vec<Range<usize>>,
}

impl Layout {
    /// How to load the file in parts, with the table's first `prefetch_rows` rows in the
    /// first part; `None` when nothing would be left for later (load it whole).
    pub fn plan(h: &GgufHeader, prefetch_rows: usize) -> Option<Layout> {
        let t = Table::of(h)?;
        // Every tensor other than the table must lie before the table or after it (true of
        // llama.cpp-style files): the prefix covers the former, the ranges after it the latter.
        let stop = (t.offset + prefetch_rows.min(t.rows) * t.row_bytes).max(h.data_offset);
        let layers = usize::try_from(h.metadata.get(keys::BLOCK_COUNT)?.as_u64()?).ok()?;
        // A block is at least one tensor of the file: no more blocks than tensors.
        if layers > h.tensors.len() {
            return None;
        }
        let blocks: Option<Vec<Range<usize>>> =
            (0..layers).map(|i| block_range(&h.tensors, i)).collect();
        let blocks = blocks?;
        // The deeper blocks come later when each lies after every tensor the first alignment
        // needs; otherwise they all come before ready, as the other tensors do.
        let first = first_blocks(&h.metadata)?.min(layers);
        let needed_end = |first: usize| {
            h.tensors
                .iter()
                .filter(|i| {
                    i.name != TABLE && !(first..layers).any(|b| blocks[b].contains(&i.offset))
                })
                .map(|i| i.offset + i.n_bytes)
                .max()
                .unwrap_or(t.end())
                .max(t.end())
        };
        let (first, ready_end) = match needed_end(first) {
            end if blocks[first..].iter().all(|b| b.start >= end) => (first, end),
            _ => (layers, needed_end(layers)),
        };
        let later = stop < t.end() || first < layers;
        later.then_some(Layout {
            table: t,
            stop,
            ready_end,
            first_blocks: first,
            blocks,
        })
    }

    /// The first bound of those this type promises (see [`Layout`]) that does not hold for a
    /// file of `file_len` bytes, or `None`: what the tests and the fuzz target check.
    pub fn broken_bound(&self, file_len: usize) -> Option<&'static str> {
        let t = self.table;
        [
            (
                t.offset <= self.stop && self.stop <= t.end(),
                "the first part ends in the table",
            ),
            (t.end() <= self.ready_end, "the tail starts after the table"),
            (self.ready_end <= file_len, "the tail ends in the file"),
            (
                self.first_blocks <= self.blocks.len(),
                "first_blocks counts blocks",
            ),
            (
                self.blocks
                    .iter()
                    .all(|b| b.start <= b.end && b.end <= file_len),
                "every block is in the file",
            ),
            (
                self.blocks[self.first_blocks.min(self.blocks.len())..]
                    .iter()
                    .all(|b| b.start >= self.ready_end),
                "the later blocks come after the tail",
            ),
        ]
        .into_iter()
        .find_map(|(holds, bound)| (!holds).then_some(bound))
    }

    /// Whole table rows in the first part.
    pub fn prefetched_rows(&self) -> usize {
        (self.stop - self.table.offset) / self.table.row_bytes
    }

    /// Bytes needed before ready: the first part and the tail after the table.
    pub fn ready_bytes(&self) -> usize {
        self.stop + (self.ready_end - self.table.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgufWriter, Value};
    use crate::tensor::DType;

    /// A file with a tensor of every name a block has, the table before or after them.
    fn header(table_first: bool, layers: u32, align_layer: Option<u32>) -> GgufHeader {
        let mut w = GgufWriter::new();
        w.set(keys::BLOCK_COUNT, layers);
        if let Some(l) = align_layer {
            w.set(keys::ALIGN_LAYER, l);
        }
        let f32s = |w: &mut GgufWriter, name: &str, shape: Vec<usize>| {
            let n = shape.iter().product::<usize>();
            w.add(name, DType::F32, shape, vec![0u8; 4 * n]).unwrap();
        };
        if table_first {
            f32s(&mut w, TABLE, vec![8, 4]);
        }
        f32s(&mut w, "position_embd.weight", vec![4, 4]);
        for i in 0..layers {
            for name in crate::model::block_tensor_names(i as usize) {
                f32s(&mut w, &name, vec![4]);
            }
        }
        if !table_first {
            f32s(&mut w, TABLE, vec![8, 4]);
        }
        let bytes = w.to_bytes().unwrap();
        GgufHeader::parse(&bytes, bytes.len()).unwrap()
    }

    #[test]
    fn deeper_blocks_after_the_table_come_later() {
        let h = header(true, 4, Some(2));
        let l = Layout::plan(&h, 2).unwrap();
        assert_eq!(l.broken_bound(h.file_len), None, "{l:?}");
        assert_eq!(l.first_blocks, 2);
        assert_eq!(l.prefetched_rows(), 2);
        assert_eq!(l.ready_end, l.blocks[1].end);
        assert_eq!(l.ready_bytes(), l.stop + (l.blocks[1].end - l.table.end()));
        // A bound that does not hold is named.
        let mut bad = l.clone();
        bad.ready_end = h.file_len + 1;
        assert_eq!(
            bad.broken_bound(h.file_len),
            Some("the tail ends in the file")
        );
        bad = l.clone();
        bad.blocks[3].start = l.ready_end - 1;
        assert_eq!(
            bad.broken_bound(h.file_len),
            Some("the later blocks come after the tail")
        );
    }

    #[test]
    fn blocks_before_the_table_all_come_before_ready() {
        let h = header(false, 4, Some(2));
        let l = Layout::plan(&h, 2).unwrap();
        assert_eq!(l.broken_bound(h.file_len), None, "{l:?}");
        assert_eq!(l.first_blocks, 4);
        assert_eq!(l.ready_end, l.table.end());
        // With every row prefetched nothing is left for later: the file loads whole.
        assert_eq!(Layout::plan(&h, 8), None);
    }

    #[test]
    fn a_file_claiming_more_blocks_than_it_has_is_not_planned() {
        let mut h = header(true, 2, None);
        h.metadata
            .insert(keys::BLOCK_COUNT.into(), Value::U64(u64::MAX));
        assert_eq!(Layout::plan(&h, 2), None);
        h.metadata.insert(keys::BLOCK_COUNT.into(), Value::U32(3));
        assert_eq!(Layout::plan(&h, 2), None, "block 2 has no tensors");
    }
}
