//! Corpus tools: per-pair quality scores for filtering parallel corpora ([`score`], with the
//! bitext-mining margin of [`margin`]), and a corpus-level cross-lingual alignment score per
//! encoder layer ([`mexa`]).
//!
//! The functions take blocks of pairs and return plain serde records, so the CLI, the Python
//! package and the browser package call the same code; reading files, printing and progress
//! bars stay with the callers.

pub mod blocks;
pub mod margin;
pub mod mexa;
pub mod score;

pub use blocks::for_each_block;
pub use margin::{margin_from_cosines, margin_scores};
pub use mexa::{
    add_block, check_parallel, mexa, mexa_from_cosines, mexa_from_vectors, LayerAlignment,
    MexaOptions,
};
pub use score::{
    measure_pairs, score_block, score_measured, PairMeasure, PairScore, ScoreOptions, Thresholds,
};

/// Most pairs one call takes: the margin and MEXA compare every pair of a block with every
/// other (a 10,000 × 10,000 cosine matrix is 400 MB), so larger inputs are cut into blocks
/// by the caller.
pub const MAX_BLOCK: usize = 10_000;

/// Pairs per block unless a caller says otherwise (the CLI's `--block`, the Python
/// package's `block=`).
pub const DEFAULT_BLOCK: usize = 1000;
