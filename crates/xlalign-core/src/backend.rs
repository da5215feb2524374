//! The seam between the model math and where it runs. The CPU backend ([`crate::cpu`]) and
//! the WebGPU backend (crate `xlalign-gpu`) both implement [`Backend`]; everything above it
//! (pooling, windowing, alignment) is written once.
//!
//! Methods are `async` because WebGPU in the browser can only wait by yielding to the event
//! loop; the CPU backend's futures are ready at once.

use ndarray::{Array2, ArrayView2};

use crate::align::{AlignOptions, UnitLink};
use crate::error::Result;
use crate::model::EncoderLayer;

/// What runs the encoder, for display ("WebGPU on NVIDIA …", "CPU, 2 threads").
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BackendInfo {
    /// `cpu` or `webgpu`.
    #[cfg_attr(feature = "ts", tsify(type = "\"cpu\" | \"webgpu\""))]
    pub kind: String,
    /// Device or adapter name.
    pub device: String,
    /// Why this backend was chosen (e.g. why a fallback happened); empty when asked for.
    pub reason: String,
}

/// Hidden states kept from one forward pass.
///
/// Layer numbering: 0 is the embedding output (after its LayerNorm), `i` the output of the
/// i-th transformer block (1-based), so `config.layers` is the last hidden state.
#[derive(Clone, Debug)]
pub struct ForwardOutput {
    /// One `[seq_len, hidden]` matrix per requested layer, in request order.
    pub layers: Vec<Array2<f32>>,
}

/// Every method is required, none has a default: a type that wraps a backend (the selection
/// of CPU or GPU, the browser's engine, progressive loading) must forward each one, and one
/// it forgets is a compile error rather than a call that silently falls back to the CPU.
#[allow(async_fn_in_trait)]
pub trait Backend {
    fn info(&self) -> BackendInfo;

    /// Runs the encoder on a batch of id sequences (each already wrapped in `<s> … </s>` and
    /// at most `max_positions` long) and returns the requested layers for each sequence.
    /// Only the blocks up to the highest requested layer are computed.
    async fn forward(&self, sequences: &[&[u32]], layers: &[usize]) -> Result<Vec<ForwardOutput>>;

    /// Extracts the links of a batch of pairs where the vectors live (on a GPU, so that only
    /// links and cosines come back), as [`crate::align::methods::extract`] would on
    /// `cosine_matrix(src, tgt)` and `src · tgtᵀ` of each pair.
    ///
    /// `Ok(None)` means "not here": the backend (the CPU one) has no device extraction, and
    /// the caller extracts on the CPU. A backend that answers must answer for every pair, in
    /// order.
    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<Vec<UnitAlignment>>>;

    /// Runs the encoder up to `layer` on `sequences` (as [`Backend::forward`] would) and
    /// aligns `pairs` of them where the hidden states are, so that they never leave the
    /// device: each unit is the mean of the listed rows of that layer, and the rest is
    /// [`Backend::align_units`] on those units. With `pooled`, the encoder runs to the last
    /// layer and each sequence's pooled, L2-normalised vector comes back too (as
    /// [`crate::embed`] pools a text of one window).
    ///
    /// `Ok(None)` means "not here" (the CPU backend): the caller runs [`Backend::forward`]
    /// and extracts as usual.
    async fn align_sequences(
        &self,
        sequences: &[&[u32]],
        layer: usize,
        pooled: bool,
        pairs: &[SequencePair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<SequenceAlignment>>;
}

/// Writing rows of the word-embedding table into a backend that is already running, in
/// place: the CPU backend writes the table it reads (shared with its model, see
/// [`crate::table::RowTable`]), the WebGPU backend writes the uploaded table buffer.
/// Progressive loading uses it for every page of rows that arrives, so a page costs its own
/// bytes, never a copy of the table or a rebuilt backend.
///
/// A trait of its own with no default, so that a wrapper cannot inherit a silent no-op: a
/// type that runs a backend and should take rows must forward this call itself, and code
/// that needs it does not compile with one that does not.
pub trait WriteRows {
    /// Overwrites rows `first..` of the token-embedding table with `rows`: whole rows in the
    /// table's stored type, as they lie in the model file. Calls already under way see the
    /// table before or after the write, never a mix of both within a row; the rows written
    /// should be ones those calls do not read (progressive loading writes only absent rows).
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> Result<()>;
}

/// Adding transformer blocks to a backend that is already running: progressive loading
/// starts the backend with the blocks the first alignment needs and adds the deeper ones
/// as they arrive, so a block costs its own upload, never a rebuilt backend. The CPU
/// backend prepares the block for its kernels into the block list its clones share; the
/// WebGPU backend uploads the block's buffers and appends them to its layer list.
///
/// Blocks arrive in order (block `i` after blocks `0..i`), so the blocks present are
/// always a prefix and a layer `l` can be computed once `l` blocks are present. A backend
/// never runs a block it does not have: a pass that would needs fails with an error.
///
/// As [`WriteRows`], a trait with no defaults, so that a wrapper cannot drop the call.
pub trait WriteBlocks {
    /// How many blocks the backend can run (`0..n` are present).
    fn blocks_present(&self) -> usize;

    /// Adds block `index`, which must be the next one (`index == blocks_present()`; an
    /// index already present is an error too). Passes already under way are unaffected.
    fn add_block(&self, index: usize, block: &EncoderLayer) -> Result<()>;
}

/// The error of a pass that needs a block the backend does not have yet.
pub fn absent_block(needed: usize, present: usize) -> crate::Error {
    crate::Error::Backend(format!(
        "the encoder needs {needed} blocks but has only {present}: block {present} has not arrived yet"
    ))
}

/// Checks that `index` is the next block of a backend with `present` of `total`.
pub fn check_next_block(index: usize, present: usize, total: usize) -> Result<()> {
    if index != present || index >= total {
        return Err(crate::Error::Input(format!(
            "cannot add block {index}: the backend has blocks 0..{present} of {total}, and blocks are added in order"
        )));
    }
    Ok(())
}

/// What [`Backend::align_sequences`] gives back.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceAlignment {
    /// One per pair, in order.
    pub pairs: Vec<UnitAlignment>,
    /// One pooled vector per sequence when asked for, else empty.
    pub pooled: Vec<Vec<f32>>,
}

/// One pair of a [`Backend::align_sequences`] call.
#[derive(Clone, Copy, Debug)]
pub struct SequencePair<'a> {
    /// Indices of the source and target sequences.
    pub src: usize,
    pub tgt: usize,
    /// Per unit, the token positions (rows of its sequence) averaged into it: one position
    /// per unit at subword level, a word's subwords at word-average level.
    pub src_units: &'a [Vec<usize>],
    pub tgt_units: &'a [Vec<usize>],
}

/// The vectors one pair is aligned with: one row per unit (a subword, or a word's averaged
/// subwords), exactly the rows [`crate::align::align_words`] extracts between.
#[derive(Clone, Copy, Debug)]
pub struct UnitPair<'a> {
    /// `[source units, hidden]`.
    pub src: ArrayView2<'a, f32>,
    /// `[target units, hidden]`.
    pub tgt: ArrayView2<'a, f32>,
}

/// What [`Backend::align_units`] gives back for one [`UnitPair`].
#[derive(Clone, Debug, PartialEq)]
pub struct UnitAlignment {
    /// Sorted by (row, col), as [`crate::align::methods::extract`] returns them.
    pub links: Vec<UnitLink>,
    /// `[source units, target units]` cosines: the word heatmap and the BERTScore-style
    /// scores are read off them, so the hidden states need not come back.
    pub cosine: Array2<f32>,
}

/// Where the user asks the encoder to run; `xlalign-gpu`'s `select` opens it. One type for
/// the CLI's `--backend`, the package's `backend` option and the demo's backend menu.
///
/// Spellings (any case): `auto`, `cpu`, `gpu`, and `webgpu`, the browser's name for the GPU
/// (what the package and the demo write, see [`BackendChoice::web_name`]).
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// serde goes through the names (`serde_by_name!`); these attributes only give the TypeScript
// declaration the package's spellings, `web_name` (the tests compare them).
#[cfg_attr(feature = "ts", serde(rename_all = "lowercase"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    /// The GPU if a hardware WebGPU adapter exists, else the CPU (with the reason).
    #[default]
    Auto,
    Cpu,
    /// Always the GPU: an error without one.
    #[cfg_attr(feature = "ts", serde(rename = "webgpu"))]
    Gpu,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] =
        [BackendChoice::Auto, BackendChoice::Cpu, BackendChoice::Gpu];

    /// The CLI's name: `auto`, `cpu`, `gpu`.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
        }
    }

    /// The browser's name: `auto`, `cpu`, `webgpu` (the package's option values and the
    /// demo's share links).
    pub fn web_name(self) -> &'static str {
        match self {
            BackendChoice::Gpu => "webgpu",
            other => other.name(),
        }
    }
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendChoice {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<BackendChoice> {
        let lower = s.trim().to_ascii_lowercase();
        BackendChoice::ALL
            .into_iter()
            .find(|b| lower == b.name() || lower == b.web_name())
            .ok_or_else(|| {
                crate::Error::Input(format!(
                    "unknown backend `{s}` (use auto, cpu or gpu; `webgpu` also means gpu)"
                ))
            })
    }
}

crate::align::options::serde_by_name!(BackendChoice);

#[cfg(test)]
mod tests {
    use super::BackendChoice;

    #[test]
    fn backend_choice_spellings() {
        for b in BackendChoice::ALL {
            assert_eq!(b.name().parse::<BackendChoice>().unwrap(), b);
            assert_eq!(b.web_name().parse::<BackendChoice>().unwrap(), b);
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(serde_json::from_str::<BackendChoice>(&json).unwrap(), b);
        }
        assert_eq!(
            "WebGPU".parse::<BackendChoice>().unwrap(),
            BackendChoice::Gpu
        );
        assert_eq!(
            serde_json::from_str::<BackendChoice>("\"webgpu\"").unwrap(),
            BackendChoice::Gpu
        );
        let e = "tpu".parse::<BackendChoice>().unwrap_err().to_string();
        assert!(e.contains("`tpu`") && e.contains("auto, cpu or gpu"), "{e}");
        let e = serde_json::from_str::<BackendChoice>("\"tpu\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tpu`") && e.contains("auto, cpu or gpu"), "{e}");
    }
}
