//! `xlalign._xlalign`: the Rust core behind the Python package `xlalign`.
//!
//! A thin layer: options arrive as the core's [`AlignRequest`] in JSON (the Python wrapper
//! turns keyword arguments into it, so the core's names, checks and defaults apply as they
//! do in the CLI and the JavaScript package), and results leave as the core's serde JSON,
//! which the wrapper turns into dataclasses. The encoder runs with the GIL released, so an
//! aligner can serve several Python threads. Errors become the package's exception classes
//! (`xlalign.errors`) by [`ErrorKind`], with the core's message.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use xlalign_core::align::extract::{side_units, Units};
use xlalign_core::align::Level;
use xlalign_core::corpus::{
    add_block, check_parallel, for_each_block, mexa, score_block, MexaOptions, ScoreOptions,
    MAX_BLOCK,
};
use xlalign_core::embed::{embed_texts, Prefix};
use xlalign_core::error::ErrorKind;
use xlalign_core::pipeline::{Aligner, EncodedPair};
use xlalign_core::request::{AlignRequest, Part};
use xlalign_core::{BackendChoice, Error};
use xlalign_gpu::{AnyBackend, CpuSettings};

/// The exception for a core error: `xlalign.errors.<Kind>Error(message)`.
fn py_err(py: Python<'_>, e: &Error) -> PyErr {
    let class = match e.kind() {
        ErrorKind::Model => "ModelError",
        ErrorKind::Input => "InputError",
        ErrorKind::Backend => "BackendError",
        ErrorKind::Io => "FileError",
    };
    let made = py
        .import("xlalign.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((e.to_string(),)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        // The package's own module is missing (the native module imported alone).
        Err(import) => import,
    }
}

fn request(json: &str) -> Result<AlignRequest, Error> {
    serde_json::from_str(json).map_err(|e| Error::Input(format!("options: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("cannot write the result: {e}")))
}

fn check_block(block: usize) -> Result<(), Error> {
    if !(1..=MAX_BLOCK).contains(&block) {
        return Err(Error::Input(format!(
            "block must be between 1 and {MAX_BLOCK}, got {block}"
        )));
    }
    Ok(())
}

/// Per-item results as `(kind, text)`: `ok` with the JSON, or the error's kind with its
/// message (the wrapper makes a `PairError` of it).
fn tagged(results: Vec<Result<String, Error>>) -> Vec<(String, String)> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(json) => ("ok".to_string(), json),
            Err(e) => (format!("{:?}", e.kind()), e.to_string()),
        })
        .collect()
}

/// A model on its backend.
#[pyclass(frozen, module = "xlalign._xlalign", name = "Aligner")]
struct PyAligner {
    core: Aligner<AnyBackend>,
}

/// One pair after the encoder, for extracting links with several settings.
#[pyclass(frozen, module = "xlalign._xlalign", name = "Encoded")]
struct PyEncoded {
    pair: EncodedPair,
}

#[pymethods]
impl PyAligner {
    #[new]
    #[pyo3(signature = (model=None, backend="auto", threads=None, isa=None))]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        backend: &str,
        threads: Option<usize>,
        isa: Option<&str>,
    ) -> PyResult<Self> {
        let opened = py.detach(|| -> Result<Self, Error> {
            let choice: BackendChoice = backend.parse()?;
            let isa = match isa {
                None => None,
                Some(name) => Some(xlalign_core::cpu::kernels::Isa::by_name(name).ok_or_else(
                    || {
                        Error::Input(format!(
                            "`{name}` is not an instruction set this CPU has (it has: {})",
                            xlalign_core::cpu::kernels::Isa::available()
                                .iter()
                                .map(|i| i.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    },
                )?),
            };
            if threads == Some(0) {
                return Err(Error::Input("threads must be at least 1".into()));
            }
            let model = Arc::new(xlalign_core::file::load_model(model.as_deref())?);
            let backend = xlalign_gpu::open(&model, choice, CpuSettings { threads, isa })?;
            Ok(PyAligner {
                core: Aligner::new(model, backend),
            })
        });
        opened.map_err(|e| py_err(py, &e))
    }

    /// `{"kind", "device", "reason"}` as JSON.
    fn backend_json(&self, py: Python<'_>) -> PyResult<String> {
        to_json(&xlalign_core::Backend::info(&self.core.backend)).map_err(|e| py_err(py, &e))
    }

    /// The model's name, size and recommended options as JSON.
    fn model_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.core.model;
        let rec = self.core.recommendation().map_err(|e| py_err(py, &e))?;
        let c = &m.config;
        to_json(&serde_json::json!({
            "name": m.name,
            "layers": c.layers,
            "hidden": c.hidden,
            "heads": c.heads,
            "maxPositions": c.max_positions,
            "recommendation": rec,
        }))
        .map_err(|e| py_err(py, &e))
    }

    /// Aligns pairs in one encoder batch. One `(kind, text)` per pair, in order: kind `ok`
    /// with the result's JSON, or the error's class name with its message.
    fn align_batch(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        options: &str,
    ) -> PyResult<Vec<(String, String)>> {
        let done = py.detach(|| -> Result<Vec<Result<String, Error>>, Error> {
            let (enc, opts) = request(options)?.resolve(&self.core.recommendation()?)?;
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(s, t)| (s.as_str(), t.as_str()))
                .collect();
            let results = pollster::block_on(self.core.align_batch(&refs, &enc, &opts))?;
            Ok(results
                .into_iter()
                .map(|r| r.and_then(|a| to_json(&a)))
                .collect())
        });
        Ok(tagged(done.map_err(|e| py_err(py, &e))?))
    }

    /// Runs the encoder on one pair (the encoding part of the options only).
    fn encode(
        &self,
        py: Python<'_>,
        src: String,
        tgt: String,
        options: &str,
    ) -> PyResult<PyEncoded> {
        let done = py.detach(|| -> Result<EncodedPair, Error> {
            let request = request(options)?;
            request.check_only(Part::Encode)?;
            let enc = request.encode_options(&self.core.recommendation()?)?;
            let mut out = pollster::block_on(
                self.core
                    .encode_pairs(&[(src.as_str(), tgt.as_str())], &enc),
            )?;
            out.pop()
                .unwrap_or_else(|| Err(Error::Backend("no pair came back".into())))
        });
        done.map(|pair| PyEncoded { pair })
            .map_err(|e| py_err(py, &e))
    }

    /// Runs the encoder on pairs in one batch (the encoding part of the options only): one
    /// `(kind, encoded, message)` per pair, in order — kind `ok` with the pair, or the error's
    /// class name with its message.
    fn encode_batch(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        options: &str,
    ) -> PyResult<Vec<(String, Option<PyEncoded>, String)>> {
        let done = py.detach(|| -> Result<Vec<Result<EncodedPair, Error>>, Error> {
            let request = request(options)?;
            request.check_only(Part::Encode)?;
            let enc = request.encode_options(&self.core.recommendation()?)?;
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(s, t)| (s.as_str(), t.as_str()))
                .collect();
            pollster::block_on(self.core.encode_pairs(&refs, &enc))
        });
        Ok(done
            .map_err(|e| py_err(py, &e))?
            .into_iter()
            .map(|r| match r {
                Ok(pair) => ("ok".to_string(), Some(PyEncoded { pair }), String::new()),
                Err(e) => (format!("{:?}", e.kind()), None, e.to_string()),
            })
            .collect())
    }

    /// Links from an encoded pair (the extraction part of the options only), as JSON.
    fn extract(&self, py: Python<'_>, encoded: &PyEncoded, options: &str) -> PyResult<String> {
        let done = py.detach(|| -> Result<String, Error> {
            let request = request(options)?;
            request.check_only(Part::Extract)?;
            let opts = request.align_options(&self.core.recommendation()?)?;
            to_json(&self.core.extract(&encoded.pair, &opts)?)
        });
        done.map_err(|e| py_err(py, &e))
    }

    /// Quality scores of pairs, cut into blocks of `block` as the CLI cuts them
    /// ([`for_each_block`]; the margin compares each pair with its block's others): one
    /// `(kind, text)` per pair as [`Self::align_batch`] gives them.
    fn score(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        options: &str,
        score: &str,
        block: usize,
    ) -> PyResult<Vec<(String, String)>> {
        let done = py.detach(|| -> Result<Vec<Result<String, Error>>, Error> {
            check_block(block)?;
            let (enc, opts) = request(options)?.resolve(&self.core.recommendation()?)?;
            let score: ScoreOptions = serde_json::from_str(score)
                .map_err(|e| Error::Input(format!("score options: {e}")))?;
            let mut out = Vec::with_capacity(pairs.len());
            let refs = pairs.iter().map(|(s, t)| Ok((s.as_str(), t.as_str())));
            for_each_block(refs, block, |b: Vec<(&str, &str)>| {
                let got =
                    pollster::block_on(score_block(&self.core, &b, &enc, &opts, &score, |_| {}))?;
                out.extend(got.into_iter().map(|r| r.and_then(|a| to_json(&a))));
                Ok::<(), Error>(())
            })?;
            Ok(out)
        });
        Ok(tagged(done.map_err(|e| py_err(py, &e))?))
    }

    /// MEXA per layer of parallel sentences, in blocks of `block` pairs (the pair-weighted
    /// mean over blocks, [`add_block`]), as JSON.
    fn mexa(
        &self,
        py: Python<'_>,
        src: Vec<String>,
        tgt: Vec<String>,
        options: &str,
        block: usize,
    ) -> PyResult<String> {
        let done = py.detach(|| -> Result<String, Error> {
            check_block(block)?;
            let opts: MexaOptions = serde_json::from_str(options)
                .map_err(|e| Error::Input(format!("mexa options: {e}")))?;
            check_parallel(src.len(), tgt.len())?;
            let mut total = Vec::new();
            let pairs = src
                .iter()
                .zip(&tgt)
                .map(|(s, t)| Ok((s.as_str(), t.as_str())));
            for_each_block(pairs, block, |b: Vec<(&str, &str)>| {
                let (s, t): (Vec<&str>, Vec<&str>) = b.into_iter().unzip();
                add_block(
                    &mut total,
                    pollster::block_on(mexa(&self.core, &s, &t, &opts, |_| {}))?,
                );
                Ok::<(), Error>(())
            })?;
            to_json(&total)
        });
        done.map_err(|e| py_err(py, &e))
    }

    /// Pooled, L2-normalised sentence vectors: `(float32 bytes, rows, columns)`.
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        prefix: &str,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let done = py.detach(|| -> Result<(Vec<u8>, usize, usize), Error> {
            let prefix = Prefix::parse(prefix)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let hidden = self.core.model.config.hidden;
            let out = pollster::block_on(embed_texts(
                &self.core.model,
                &self.core.backend,
                &refs,
                prefix,
                None,
            ))?;
            let mut bytes = Vec::with_capacity(out.len() * hidden * 4);
            for e in &out {
                bytes.extend(e.embedding.iter().flat_map(|x| x.to_le_bytes()));
            }
            Ok((bytes, out.len(), hidden))
        });
        let (bytes, rows, cols) = done.map_err(|e| py_err(py, &e))?;
        Ok((PyBytes::new(py, &bytes), rows, cols))
    }
}

#[pymethods]
impl PyEncoded {
    /// The layer the pair was encoded at.
    #[getter]
    fn layer(&self) -> usize {
        self.pair.layer
    }

    /// The rows extraction works on at `level` (`subword` or `word-average`), per side, from
    /// the core's own selection ([`side_units`]: specials, prefix and bare `▁` dropped; at
    /// word-average level each word's mean): `(float32 bytes, rows, columns, first word of each
    /// row, further (row, word) memberships of rows shared by several CJK words, word count)`.
    fn states<'py>(
        &self,
        py: Python<'py>,
        level: &str,
    ) -> PyResult<(StatesSide<'py>, StatesSide<'py>)> {
        let done = (|| -> Result<(Units, Units), Error> {
            let level: Level = level.parse()?;
            let p = &self.pair;
            Ok((
                side_units(p.src.states.view(), &p.src.map, level, "source")?,
                side_units(p.tgt.states.view(), &p.tgt.map, level, "target")?,
            ))
        })();
        let (src, tgt) = done.map_err(|e| py_err(py, &e))?;
        Ok((
            states_side(py, src, self.pair.src.map.n_words),
            states_side(py, tgt, self.pair.tgt.map.n_words),
        ))
    }
}

/// One side of [`PyEncoded::states`].
type StatesSide<'py> = (
    Bound<'py, PyBytes>,
    usize,
    usize,
    Vec<usize>,
    Vec<(usize, usize)>,
    usize,
);

fn states_side(py: Python<'_>, units: Units, n_words: usize) -> StatesSide<'_> {
    let (rows, cols) = units.vectors.dim();
    let bytes: Vec<u8> = units.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    // Every unit belongs to at least one word (the core keeps no other rows).
    let mut first = Vec::with_capacity(rows);
    let mut shared = Vec::new();
    for (r, ws) in units.words.iter().enumerate() {
        if let Some((&w, rest)) = ws.split_first() {
            first.push(w);
            shared.extend(rest.iter().map(|&o| (r, o)));
        }
    }
    (PyBytes::new(py, &bytes), rows, cols, first, shared, n_words)
}

/// A `source ||| target` (or `source<TAB>target`) line as the CLI reads it
/// ([`xlalign_core::pairs::split_pair`]); `InputError` when it is not a pair.
#[pyfunction]
fn split_pair(py: Python<'_>, line: &str) -> PyResult<(String, String)> {
    xlalign_core::pairs::split_pair(line)
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .map_err(|e| py_err(py, &Error::Input(e.to_string())))
}

#[pymodule]
fn _xlalign(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(split_pair, m)?)?;
    m.add_class::<PyAligner>()?;
    m.add_class::<PyEncoded>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_BLOCK", xlalign_core::corpus::DEFAULT_BLOCK)?;
    m.add("MAX_BLOCK", MAX_BLOCK)?;
    Ok(())
}
