//! The encoder forward pass on the GPU: [`GpuBackend`].
//!
//! A batch of sequences is padded to `[batch, longest]`; each sequence's length is the
//! attention mask (padding keys are never attended to). Every block up to the highest
//! requested layer is recorded into one command buffer and submitted once; the hidden
//! states of the requested layers are copied into one staging buffer inside that same
//! submission, read back once, and un-padded on the host. Batches too large for the
//! device's buffer limits (or for [`GpuBackend::max_tokens_per_pass`]) are split into
//! several such passes, grouping sequences of similar length to waste less on padding.
//!
//! Activation buffers and their bind groups are built once and reused; they are rebuilt
//! only when a larger batch arrives.
//!
//! For alignment ([`Backend::align_sequences`]) nothing is read back after the passes: the
//! alignment layer of each sequence is copied into one buffer that stays on the GPU, and
//! [`crate::align`] averages the units and extracts the links from it.

use std::sync::{Arc, Mutex};

use ndarray::Array2;

use xlalign_core::align::AlignOptions;
use xlalign_core::backend::{
    Backend, BackendInfo, ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair,
    WriteBlocks, WriteRows,
};
use xlalign_core::error::{Error, Result};
use xlalign_core::model::{
    Activation, EncoderConfig, EncoderLayer, EncoderWeights, Model, Pooling,
};

use crate::align::{align_kept, align_pairs_on_gpu, runs_on_gpu, Kept, KeptPair};
use crate::context::{ErrorScopes, GpuContext};
use crate::kernels::{
    bind_group, matmul_groups, AttentionParams, Bind, EmbedParams, Epilogue, LayerNormParams,
    MatmulParams, PoolParams, UniformSlots, ATTENTION_Q_TILE, MAX_HEAD_DIM,
};
use crate::weights::{upload_layer, GpuLayer, GpuMatrix, GpuNorm, GpuWeights};

/// Default cap on padded tokens (batch × longest sequence) per submission: bounds GPU
/// memory (≈ 20 KB of activations per token for the default model) and keeps a browser
/// tab responsive. [`GpuBackend::set_max_tokens_per_pass`] changes it.
pub const DEFAULT_MAX_TOKENS_PER_PASS: usize = 8192;

/// The WebGPU implementation of [`Backend`].
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    config: EncoderConfig,
    /// For messages: the model's name.
    name: String,
    weights: GpuWeights,
    workspace: Mutex<Option<Workspace>>,
    /// Readback buffers waiting for reuse.
    staging: Mutex<Vec<wgpu::Buffer>>,
    limit_tokens: usize,
    max_tokens: usize,
    reason: String,
    /// Whether [`Backend::align_units`] extracts links on the GPU (see
    /// [`GpuBackend::set_device_alignment`]).
    device_alignment: bool,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.ctx.describe())
            .field("model", &self.name)
            .finish()
    }
}

/// What one pass reads back.
#[derive(Clone, Copy)]
enum Readback<'a> {
    /// Hidden states of these layers (sorted, distinct).
    Layers(&'a [usize]),
    /// Pooled, L2-normalised sentence vectors after the last layer.
    Pooled,
    /// Each sequence's rows of this layer are copied into `dest` (a storage buffer of
    /// `[rows, hidden]`) from row `rows[r]` on, for the alignment step to read where they
    /// are; with `pooled`, the pass runs to the last layer and the pooled vectors come back
    /// (as for [`Readback::Pooled`]), otherwise nothing does.
    Keep {
        layer: usize,
        dest: &'a wgpu::Buffer,
        rows: &'a [u64],
        pooled: bool,
    },
}

impl GpuBackend {
    /// Opens the default WebGPU adapter and uploads the model to it.
    pub async fn new(model: Arc<Model>) -> Result<GpuBackend> {
        let ctx = GpuContext::new().await?;
        GpuBackend::with_context(ctx, model).await
    }

    /// Uploads the model to an already opened device (shared, e.g., with the aligner).
    pub async fn with_context(ctx: Arc<GpuContext>, model: Arc<Model>) -> Result<GpuBackend> {
        GpuBackend::from_weights(ctx, &model.config, &model.weights, &model.name).await
    }

    /// As [`GpuBackend::with_context`], from a configuration and weights without a
    /// tokenizer (tests build small random encoders this way). Nothing is kept on the host:
    /// the weights live on the GPU afterwards.
    pub async fn from_weights(
        ctx: Arc<GpuContext>,
        config: &EncoderConfig,
        weights: &EncoderWeights,
        name: &str,
    ) -> Result<GpuBackend> {
        let cfg = config;
        let head_dim = cfg.head_dim() as u32;
        if head_dim > MAX_HEAD_DIM {
            return Err(Error::Unsupported(format!(
                "attention heads of {head_dim} dimensions (the WebGPU kernels take up to {MAX_HEAD_DIM})"
            )));
        }
        check_shapes(cfg, weights)?;
        let scopes = ErrorScopes::push(&ctx.device);
        let weights = GpuWeights::upload(&ctx, cfg, weights);
        // Compile every pipeline variant the model needs now, so a shader or driver problem
        // surfaces at load time.
        if let Ok(w) = &weights {
            let k = &ctx.kernels;
            k.embed(w.table_type);
            k.attention(head_dim);
            for l in w.layers() {
                compile_layer(&ctx, cfg, &l);
            }
        }
        scopes.check("uploading the model").await?;
        let weights = weights?;

        // Padded tokens per pass: the largest activation ([tokens, max(ff, 3·hidden)] f32)
        // must fit one storage binding, the per-row kernels launch one workgroup per token
        // along one dispatch dimension, and the readback of every layer must fit one buffer.
        let widest = cfg.ff.max(3 * cfg.hidden) as u64 * 4;
        let by_binding = ctx.max_binding_bytes() / widest;
        let by_dispatch = ctx.limits.max_compute_workgroups_per_dimension as u64;
        let by_staging =
            ctx.limits.max_buffer_size / ((cfg.layers as u64 + 1) * cfg.hidden as u64 * 4);
        let limit_tokens = by_binding.min(by_dispatch).min(by_staging) as usize;
        if limit_tokens == 0 {
            return Err(Error::Backend(format!(
                "the WebGPU adapter's buffer limits ({} bytes per binding) are too small for one token of this model",
                ctx.max_binding_bytes()
            )));
        }
        Ok(GpuBackend {
            ctx,
            config: cfg.clone(),
            name: name.to_string(),
            weights,
            workspace: Mutex::new(None),
            staging: Mutex::new(Vec::new()),
            limit_tokens,
            max_tokens: limit_tokens.min(DEFAULT_MAX_TOKENS_PER_PASS),
            reason: String::new(),
            device_alignment: true,
        })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Sets the explanation [`Backend::info`] reports (used by [`crate::select`]).
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        self.reason = reason.into();
    }

    /// Whether the pipeline's link extraction runs on the GPU for the methods it supports
    /// ([`crate::runs_on_gpu`]; on by default). Off, [`Backend::align_units`] declines and
    /// the links are extracted on the CPU from the read-back states, e.g. to compare the two.
    pub fn set_device_alignment(&mut self, on: bool) {
        self.device_alignment = on;
    }

    /// Padded tokens (sequences × longest sequence) per submission.
    pub fn max_tokens_per_pass(&self) -> usize {
        self.max_tokens
    }

    /// Changes the per-submission token budget; clamped to what the device limits allow
    /// and to at least one full-length sequence where the limits permit it.
    pub fn set_max_tokens_per_pass(&mut self, tokens: usize) {
        let floor = self.config.max_positions.min(self.limit_tokens);
        self.max_tokens = tokens.max(floor).min(self.limit_tokens);
    }

    /// Runs all blocks and returns one pooled, L2-normalised vector per sequence (mean over
    /// the sequence's tokens, or its first token, as the model's pooling says). Pooling runs
    /// on the GPU, so only `hidden` floats per sequence come back.
    pub async fn forward_pooled(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        self.validate(sequences, &[self.config.layers])?;
        let h = self.config.hidden;
        let mut out = vec![Vec::new(); sequences.len()];
        for chunk in self.chunks(sequences) {
            let (data, _) = self
                .run_chunk(sequences, &chunk, Readback::Pooled, 1)
                .await?;
            for (r, &si) in chunk.iter().enumerate() {
                out[si] = data[r * h..(r + 1) * h].to_vec();
            }
        }
        Ok(out)
    }

    /// Timing hook: runs the forward pass on the batch `repeats` times back to back (one
    /// submission each) and reads back only the last result, so that the time spent is
    /// the GPU's, not the readback's. Returns the padded and the real token counts of one
    /// repetition.
    pub async fn run_repeated(
        &self,
        sequences: &[&[u32]],
        layers: &[usize],
        repeats: usize,
    ) -> Result<(usize, usize)> {
        let mut slots = layers.to_vec();
        slots.sort_unstable();
        slots.dedup();
        if slots.is_empty() {
            slots.push(self.config.layers);
        }
        self.validate(sequences, &slots)?;
        let mut padded = 0;
        for chunk in self.chunks(sequences) {
            let (_, lmax) = self
                .run_chunk(sequences, &chunk, Readback::Layers(&slots), repeats.max(1))
                .await?;
            padded += lmax * chunk.len();
        }
        Ok((padded, sequences.iter().map(|s| s.len()).sum()))
    }

    /// Checks a request: the layers exist and their blocks are present (layer `l` runs
    /// blocks `0..l`; a pooled pass asks for the last layer), and the sequences fit.
    fn validate(&self, sequences: &[&[u32]], layers: &[usize]) -> Result<()> {
        let cfg = &self.config;
        if let Some(l) = layers.iter().find(|&&l| l > cfg.layers) {
            return Err(Error::Input(format!(
                "layer {l} does not exist (the model has layers 0..={})",
                cfg.layers
            )));
        }
        let needed = layers.iter().copied().max().unwrap_or(0);
        let present = self.blocks_present();
        if needed > present {
            return Err(xlalign_core::backend::absent_block(needed, present));
        }
        let max_len = cfg.max_sequence_tokens();
        for (i, s) in sequences.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::Input(format!(
                    "sequence {i} is empty (it needs at least <s> and </s>)"
                )));
            }
            if s.len() > max_len {
                return Err(Error::Input(format!(
                    "sequence {i} has {} tokens, the model takes at most {max_len}",
                    s.len()
                )));
            }
            if s.len() > self.max_tokens {
                return Err(Error::Backend(format!(
                    "sequence {i} has {} tokens, the WebGPU device's limits allow {} per pass",
                    s.len(),
                    self.max_tokens
                )));
            }
            if let Some(id) = s.iter().find(|&&id| id as usize >= cfg.vocab) {
                return Err(Error::Input(format!(
                    "token id {id} in sequence {i} is outside the vocabulary of {}",
                    cfg.vocab
                )));
            }
        }
        Ok(())
    }

    /// Groups sequence indices into passes of at most `max_tokens` padded tokens, longest
    /// first so that each pass holds sequences of similar length.
    fn chunks(&self, sequences: &[&[u32]]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sequences[i].len()));
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        let mut lmax = 0;
        for i in order {
            let len = sequences[i].len();
            let longest = lmax.max(len);
            if !current.is_empty() && longest * (current.len() + 1) > self.max_tokens {
                chunks.push(std::mem::take(&mut current));
                lmax = 0;
            }
            lmax = lmax.max(len);
            current.push(i);
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }

    /// Runs one padded pass (`repeats` times) and returns the staging data and the padded
    /// length.
    async fn run_chunk(
        &self,
        sequences: &[&[u32]],
        idx: &[usize],
        readback: Readback<'_>,
        repeats: usize,
    ) -> Result<(Vec<f32>, usize)> {
        let cfg = &self.config;
        let h = cfg.hidden;
        let b = idx.len();
        let lmax = idx.iter().map(|&i| sequences[i].len()).max().unwrap_or(1);
        let m = b * lmax;
        let mut ids = vec![0u32; m];
        let mut lens = vec![0u32; b];
        for (r, &i) in idx.iter().enumerate() {
            ids[r * lmax..r * lmax + sequences[i].len()].copy_from_slice(sequences[i]);
            lens[r] = sequences[i].len() as u32;
        }
        let out_floats = match readback {
            Readback::Layers(slots) => slots.len() * m * h,
            Readback::Pooled | Readback::Keep { pooled: true, .. } => b * h,
            Readback::Keep { .. } => 0,
        };
        let out_bytes = (out_floats * 4) as u64;

        let scopes = ErrorScopes::push(&self.ctx.device);
        let staging = (out_bytes > 0).then(|| self.take_staging(out_bytes));
        {
            let mut guard = self.workspace.lock().unwrap_or_else(|e| e.into_inner());
            self.grow_workspace(&mut guard, m);
            let ws = guard.as_ref().expect("just built");
            let q = &self.ctx.queue;
            q.write_buffer(
                &ws.params,
                0,
                uniforms(&self.config, &self.weights, m, b, lmax).0.bytes(),
            );
            q.write_buffer(&ws.ids, 0, bytemuck::cast_slice(&ids));
            q.write_buffer(&ws.lens, 0, bytemuck::cast_slice(&lens));
            for _ in 0..repeats {
                let mut enc =
                    self.ctx
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("encoder forward"),
                        });
                self.record(ws, &mut enc, staging.as_ref(), &lens, lmax, readback);
                q.submit([enc.finish()]);
            }
        }
        scopes.check("running the encoder").await?;
        let data = match staging {
            Some(staging) => {
                let data = self.ctx.read_back(&staging, out_bytes).await;
                self.staging
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(staging);
                data
            }
            None => Ok(Vec::new()),
        };
        if let Some(e) = self.ctx.take_uncaptured() {
            return Err(Error::Backend(format!(
                "GPU error while running the encoder: {e}"
            )));
        }
        Ok((data?, lmax))
    }

    /// Makes the activation buffers hold at least `m` padded tokens.
    fn grow_workspace(&self, guard: &mut Option<Workspace>, m: usize) {
        if guard.as_ref().is_none_or(|w| w.tokens < m) {
            // Grow in steps so that a slowly rising batch size does not rebuild every call.
            let tokens = m.next_power_of_two().clamp(256, self.limit_tokens.max(m));
            *guard = None;
            *guard = Some(Workspace::new(
                &self.ctx,
                &self.config,
                &self.weights,
                tokens,
            ));
        }
    }

    fn take_staging(&self, bytes: u64) -> wgpu::Buffer {
        let mut pool = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = pool.iter().position(|b| b.size() >= bytes) {
            return pool.swap_remove(pos);
        }
        // Buffers too small for this call are dropped rather than kept forever.
        pool.clear();
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Records the whole pass: embeddings, blocks up to the last needed, and the copies of
    /// the requested outputs into `staging`.
    fn record(
        &self,
        ws: &Workspace,
        enc: &mut wgpu::CommandEncoder,
        staging: Option<&wgpu::Buffer>,
        lens: &[u32],
        lmax: usize,
        readback: Readback<'_>,
    ) {
        let cfg = &self.config;
        let k = &self.ctx.kernels;
        let b = lens.len();
        let m = (b * lmax) as u32;
        let row_bytes = (cfg.hidden * 4) as u64;
        let layer_bytes = b as u64 * lmax as u64 * row_bytes;
        let (slots, upto): (&[usize], usize) = match readback {
            Readback::Layers(s) => (s, s.last().copied().unwrap_or(0)),
            Readback::Pooled => (&[], cfg.layers),
            Readback::Keep { pooled: true, .. } => (&[], cfg.layers),
            Readback::Keep { layer, .. } => (&[], layer),
        };
        let copy_if_requested = |enc: &mut wgpu::CommandEncoder, layer: usize| {
            if let Some(s) = slots.iter().position(|&l| l == layer) {
                let staging = staging.expect("a staging buffer for the requested layers");
                enc.copy_buffer_to_buffer(&ws.x, 0, staging, s as u64 * layer_bytes, layer_bytes);
            }
            if let Readback::Keep {
                layer: keep,
                dest,
                rows,
                ..
            } = readback
            {
                if keep == layer {
                    for (r, (&len, &row)) in lens.iter().zip(rows).enumerate() {
                        enc.copy_buffer_to_buffer(
                            &ws.x,
                            r as u64 * lmax as u64 * row_bytes,
                            dest,
                            row * row_bytes,
                            len as u64 * row_bytes,
                        );
                    }
                }
            }
        };
        let layernorm = k.layernorm();
        let matmul = |pass: &mut wgpu::ComputePass<'_>,
                      w: &GpuMatrix,
                      group: &wgpu::BindGroup,
                      epi: Epilogue| {
            pass.set_pipeline(&k.matmul(w.wtype, epi));
            pass.set_bind_group(0, group, &[]);
            let (gx, gy) = matmul_groups(m, w.rows as u32);
            pass.dispatch_workgroups(gx, gy, 1);
        };
        let norm = |pass: &mut wgpu::ComputePass<'_>, group: &wgpu::BindGroup| {
            pass.set_pipeline(&layernorm);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(m, 1, 1);
        };

        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("embeddings"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&k.embed(self.weights.table_type));
            for group in &ws.groups.embed {
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(m, 1, 1);
            }
            norm(&mut pass, &ws.groups.embd_norm);
        }
        copy_if_requested(enc, 0);

        let attention = k.attention(cfg.head_dim() as u32);
        let act = activation_epilogue(cfg.activation);
        // `validate` checked that the blocks up to `upto` are present, and the workspace has
        // the bind groups of every present block (see `add_block`).
        let blocks = self.weights.layers();
        debug_assert!(upto <= blocks.len() && upto <= ws.groups.layers.len());
        for (l, (w, g)) in blocks.iter().zip(&ws.groups.layers).enumerate().take(upto) {
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("block"),
                    timestamp_writes: None,
                });
                matmul(&mut pass, &w.qkv, &g.qkv, Epilogue::None);
                pass.set_pipeline(&attention);
                pass.set_bind_group(0, &g.attention, &[]);
                pass.dispatch_workgroups(
                    (lmax as u32).div_ceil(ATTENTION_Q_TILE),
                    cfg.heads as u32,
                    b as u32,
                );
                matmul(&mut pass, &w.attn_output, &g.attn_output, Epilogue::None);
                norm(&mut pass, &g.attn_norm);
                matmul(&mut pass, &w.ffn_up, &g.ffn_up, act);
                matmul(&mut pass, &w.ffn_down, &g.ffn_down, Epilogue::None);
                norm(&mut pass, &g.output_norm);
            }
            copy_if_requested(enc, l + 1);
        }

        if let Readback::Pooled | Readback::Keep { pooled: true, .. } = readback {
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("pooling"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&k.pool());
                pass.set_bind_group(0, &ws.groups.pool, &[]);
                pass.dispatch_workgroups(b as u32, 1, 1);
            }
            let staging = staging.expect("a staging buffer for the pooled vectors");
            enc.copy_buffer_to_buffer(&ws.pooled, 0, staging, 0, (b * cfg.hidden * 4) as u64);
        }
    }
}

/// Rows go straight into the uploaded table (see [`GpuWeights::write_table_rows`]): no host
/// copy is kept, and nothing is uploaded again.
impl WriteRows for GpuBackend {
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> Result<()> {
        self.weights.write_table_rows(&self.ctx, first, rows)
    }
}

/// A block's buffers are uploaded once and appended to the layer list, and the activation
/// workspace gets the block's bind groups; nothing else is uploaded or rebuilt.
impl WriteBlocks for GpuBackend {
    fn blocks_present(&self) -> usize {
        self.weights
            .layers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn add_block(&self, index: usize, block: &EncoderLayer) -> Result<()> {
        let cfg = &self.config;
        xlalign_core::backend::check_next_block(index, self.blocks_present(), cfg.layers)?;
        check_layer_shapes(cfg, index, block)?;
        // Shared with the passes that snapshot the list; natively `Send + Sync` (lib.rs checks
        // the backend), on wasm32 wgpu's handles are neither and one thread uses them.
        #[allow(clippy::arc_with_non_send_sync)]
        let layer = Arc::new(upload_layer(&self.ctx, index, block)?);
        compile_layer(&self.ctx, cfg, &layer);
        // Workspace first, then the list (the order `run_chunk` takes them in).
        let mut ws = self.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let mut layers = self
            .weights
            .layers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        xlalign_core::backend::check_next_block(index, layers.len(), cfg.layers)?;
        if let Some(ws) = ws.as_mut() {
            let groups = ws.layer_groups(&self.ctx, &layer);
            ws.groups.layers.push(groups);
        }
        layers.push(layer);
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "webgpu".into(),
            device: self.ctx.describe(),
            reason: self.reason.clone(),
        }
    }

    async fn forward(&self, sequences: &[&[u32]], layers: &[usize]) -> Result<Vec<ForwardOutput>> {
        self.validate(sequences, layers)?;
        let h = self.config.hidden;
        let mut slots = layers.to_vec();
        slots.sort_unstable();
        slots.dedup();
        let mut out: Vec<ForwardOutput> = (0..sequences.len())
            .map(|_| ForwardOutput { layers: Vec::new() })
            .collect();
        if slots.is_empty() || sequences.is_empty() {
            return Ok(out);
        }
        for chunk in self.chunks(sequences) {
            let (data, lmax) = self
                .run_chunk(sequences, &chunk, Readback::Layers(&slots), 1)
                .await?;
            let per_layer = chunk.len() * lmax * h;
            for (r, &si) in chunk.iter().enumerate() {
                let len = sequences[si].len();
                for &layer in layers {
                    let s = slots
                        .iter()
                        .position(|&l| l == layer)
                        .expect("slot of a requested layer");
                    let start = s * per_layer + r * lmax * h;
                    let rows = data[start..start + len * h].to_vec();
                    out[si]
                        .layers
                        .push(Array2::from_shape_vec((len, h), rows).expect("len × hidden values"));
                }
            }
        }
        Ok(out)
    }

    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<Vec<UnitAlignment>>> {
        if !self.device_alignment || !runs_on_gpu(opts.method) {
            return Ok(None);
        }
        align_pairs_on_gpu(&self.ctx, pairs, opts).await.map(Some)
    }

    /// The passes copy the alignment layer of every sequence into one buffer that stays on
    /// the GPU (no readback, no waiting between passes); the units are averaged from it
    /// there and aligned in one more submission, whose links, dot products and unit norms
    /// are all that come back.
    async fn align_sequences(
        &self,
        sequences: &[&[u32]],
        layer: usize,
        pooled: bool,
        pairs: &[SequencePair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<SequenceAlignment>> {
        if !self.device_alignment || !runs_on_gpu(opts.method) {
            return Ok(None);
        }
        opts.validate()?;
        let last = if pooled { self.config.layers } else { layer };
        self.validate(sequences, &[layer, last])?;
        let h = self.config.hidden;
        let mut first_row = Vec::with_capacity(sequences.len());
        let mut rows = 0u64;
        for s in sequences {
            first_row.push(rows);
            rows += s.len() as u64;
        }
        // Units per pair, and the index `gather.wgsl` reads: per unit the range of its rows
        // (global row numbers in the kept states), listed after the ranges.
        let mut kept_pairs = Vec::with_capacity(pairs.len());
        let mut unit_rows: Vec<Vec<u32>> = Vec::new();
        for p in pairs {
            let mut side = |seq: usize, units: &[Vec<usize>], what: &str| -> Result<u32> {
                let len = sequences
                    .get(seq)
                    .ok_or_else(|| {
                        Error::Input(format!(
                            "{what} sequence {seq} of {} does not exist",
                            sequences.len()
                        ))
                    })?
                    .len();
                let first = unit_rows.len() as u32;
                for u in units {
                    if u.is_empty() || u.iter().any(|&t| t >= len) {
                        return Err(Error::Input(format!(
                            "a {what} unit lists rows {u:?} of a sequence of {len} tokens"
                        )));
                    }
                    unit_rows.push(
                        u.iter()
                            .map(|&t| (first_row[seq] + t as u64) as u32)
                            .collect(),
                    );
                }
                Ok(first)
            };
            let src_first = side(p.src, p.src_units, "source")?;
            let tgt_first = side(p.tgt, p.tgt_units, "target")?;
            kept_pairs.push(KeptPair {
                n: p.src_units.len(),
                m: p.tgt_units.len(),
                src_first,
                tgt_first,
            });
        }
        let head = unit_rows.len() + 1;
        let mut index: Vec<u32> =
            Vec::with_capacity(head + unit_rows.iter().map(Vec::len).sum::<usize>());
        let mut at = head as u32;
        for u in &unit_rows {
            index.push(at);
            at += u.len() as u32;
        }
        index.push(at);
        index.extend(unit_rows.iter().flatten());
        let state_bytes = rows * h as u64 * 4;
        if state_bytes > self.ctx.max_binding_bytes()
            || unit_rows.len() as u64 > self.ctx.limits.max_compute_workgroups_per_dimension as u64
        {
            // Too much for one buffer or one dispatch: the caller's two-step path splits it.
            return Ok(None);
        }

        let kept = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kept hidden states"),
            size: state_bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let chunks = self.chunks(sequences);
        {
            // Sized for the largest pass up front: the passes are not waited for, so the
            // activation buffers must not be replaced between them.
            let largest = chunks
                .iter()
                .map(|c| c.len() * c.iter().map(|&i| sequences[i].len()).max().unwrap_or(1))
                .max()
                .unwrap_or(1);
            let mut guard = self.workspace.lock().unwrap_or_else(|e| e.into_inner());
            self.grow_workspace(&mut guard, largest);
        }
        let mut vectors = vec![Vec::new(); if pooled { sequences.len() } else { 0 }];
        for chunk in &chunks {
            let rows: Vec<u64> = chunk.iter().map(|&i| first_row[i]).collect();
            let keep = Readback::Keep {
                layer,
                dest: &kept,
                rows: &rows,
                pooled,
            };
            // Without pooling nothing is read back, so the passes are not waited for.
            let (data, _) = self.run_chunk(sequences, chunk, keep, 1).await?;
            if pooled {
                for (r, &si) in chunk.iter().enumerate() {
                    vectors[si] = data[r * h..(r + 1) * h].to_vec();
                }
            }
        }
        let kept_states = Kept {
            states: &kept,
            hidden: h,
            index: &index,
        };
        let pairs = align_kept(&self.ctx, &kept_states, &kept_pairs, opts).await?;
        Ok(Some(SequenceAlignment {
            pairs,
            pooled: vectors,
        }))
    }
}

/// The kernels index by the configuration, so every tensor must have the shape it implies
/// (the model loader checks this for files; weights built in code are checked here).
fn check_shapes(c: &EncoderConfig, w: &EncoderWeights) -> Result<()> {
    let bad = |what: &str, got: String, want: String| {
        Err(Error::Unsupported(format!(
            "{what} is {got}, the configuration implies {want}"
        )))
    };
    let h = c.hidden;
    if w.token_embd.shape != [c.vocab, h] {
        return bad(
            "token_embd",
            format!("{:?}", w.token_embd.shape),
            format!("[{}, {h}]", c.vocab),
        );
    }
    if w.position_embd.len() != c.max_positions * h {
        return bad(
            "position_embd",
            w.position_embd.len().to_string(),
            (c.max_positions * h).to_string(),
        );
    }
    if w.token_types.len() < h {
        return bad(
            "token_types",
            w.token_types.len().to_string(),
            format!("at least {h}"),
        );
    }
    if w.layers.len() > c.layers {
        return bad(
            "the layer list",
            w.layers.len().to_string(),
            format!("at most {}", c.layers),
        );
    }
    let n = &w.embd_norm;
    if n.weight.len() != h || n.bias.len() != h {
        return bad(
            "token_embd_norm",
            format!("{}/{} values", n.weight.len(), n.bias.len()),
            format!("{h}"),
        );
    }
    for (i, l) in w.layers.iter().enumerate() {
        check_layer_shapes(c, i, l)?;
    }
    Ok(())
}

/// [`check_shapes`] for block `i`.
fn check_layer_shapes(c: &EncoderConfig, i: usize, l: &EncoderLayer) -> Result<()> {
    let bad = |what: &str, got: String, want: String| {
        Err(Error::Unsupported(format!(
            "{what} is {got}, the configuration implies {want}"
        )))
    };
    let (h, ff) = (c.hidden, c.ff);
    for (name, n) in [
        ("attn_output_norm", &l.attn_norm),
        ("layer_output_norm", &l.output_norm),
    ] {
        if n.weight.len() != h || n.bias.len() != h {
            return bad(
                name,
                format!("{}/{} values", n.weight.len(), n.bias.len()),
                format!("blk.{i}: {h}"),
            );
        }
    }
    for (name, lin, out, inp) in [
        ("attn_q", &l.query, h, h),
        ("attn_k", &l.key, h, h),
        ("attn_v", &l.value, h, h),
        ("attn_output", &l.attn_output, h, h),
        ("ffn_up", &l.ffn_up, ff, h),
        ("ffn_down", &l.ffn_down, h, ff),
    ] {
        if lin.weight.shape != [out, inp] || lin.bias.len() != out {
            return bad(
                &format!("blk.{i}.{name}"),
                format!("{:?} with {} bias values", lin.weight.shape, lin.bias.len()),
                format!("[{out}, {inp}] with {out}"),
            );
        }
    }
    Ok(())
}

/// Compiles the matmul variants a block's weights need (cached by the kernels).
fn compile_layer(ctx: &GpuContext, cfg: &EncoderConfig, l: &GpuLayer) {
    let k = &ctx.kernels;
    let act = activation_epilogue(cfg.activation);
    k.matmul(l.qkv.wtype, Epilogue::None);
    k.matmul(l.attn_output.wtype, Epilogue::None);
    k.matmul(l.ffn_up.wtype, act);
    k.matmul(l.ffn_down.wtype, Epilogue::None);
}

fn activation_epilogue(a: Activation) -> Epilogue {
    match a {
        Activation::GeluErf => Epilogue::GeluErf,
        Activation::GeluTanh => Epilogue::GeluTanh,
    }
}

/// Uniform slot offsets (fixed for a model; the values change with the batch shape).
struct SlotOffsets {
    embed: Vec<(u64, u64)>,
    embd_norm: (u64, u64),
    residual_norm: (u64, u64),
    qkv: (u64, u64),
    attn_output: (u64, u64),
    ffn_up: (u64, u64),
    ffn_down: (u64, u64),
    attention: (u64, u64),
    pool: (u64, u64),
}

/// All parameter blocks of a pass for `m = b · lmax` padded tokens, in a fixed order.
fn uniforms(
    c: &EncoderConfig,
    w: &GpuWeights,
    m: usize,
    b: usize,
    lmax: usize,
) -> (UniformSlots, SlotOffsets) {
    let (m, b, lmax, h) = (m as u32, b as u32, lmax as u32, c.hidden as u32);
    let mut u = UniformSlots::default();
    let embed = w
        .table
        .iter()
        .map(|part| {
            u.push(&EmbedParams {
                tokens: m,
                hidden: h,
                seq_len: lmax,
                pos_offset: c.position_offset as u32,
                row_start: part.row_start,
                row_end: part.row_end,
                _pad: [0; 2],
            })
        })
        .collect();
    let ln = |u: &mut UniformSlots, has_residual: u32| {
        u.push(&LayerNormParams {
            rows: m,
            n: h,
            eps: c.layer_norm_eps,
            has_residual,
        })
    };
    let embd_norm = ln(&mut u, 0);
    let residual_norm = ln(&mut u, 1);
    let mm = |u: &mut UniformSlots, n: usize, k: usize| {
        u.push(&MatmulParams {
            m,
            n: n as u32,
            k: k as u32,
            _pad: 0,
        })
    };
    let qkv = mm(&mut u, 3 * c.hidden, c.hidden);
    let attn_output = mm(&mut u, c.hidden, c.hidden);
    let ffn_up = mm(&mut u, c.ff, c.hidden);
    let ffn_down = mm(&mut u, c.hidden, c.ff);
    let attention = u.push(&AttentionParams {
        batch: b,
        seq_len: lmax,
        heads: c.heads as u32,
        hidden: h,
        scale: 1.0 / (c.head_dim() as f32).sqrt(),
        _pad: [0; 3],
    });
    let pool = u.push(&PoolParams {
        batch: b,
        seq_len: lmax,
        hidden: h,
        mode: match c.pooling {
            Pooling::Mean => 0,
            Pooling::Cls => 1,
        },
    });
    (
        u,
        SlotOffsets {
            embed,
            embd_norm,
            residual_norm,
            qkv,
            attn_output,
            ffn_up,
            ffn_down,
            attention,
            pool,
        },
    )
}

/// Activation buffers for up to `tokens` padded tokens, and every bind group of a pass.
struct Workspace {
    tokens: usize,
    params: wgpu::Buffer,
    ids: wgpu::Buffer,
    lens: wgpu::Buffer,
    /// The hidden state, `[tokens, hidden]`; LayerNorm updates it in place.
    x: wgpu::Buffer,
    pooled: wgpu::Buffer,
    groups: Groups,
    /// Intermediate buffers, referenced through the bind groups (and kept for those of
    /// blocks added later).
    qkv: wgpu::Buffer,
    ctx_buf: wgpu::Buffer,
    tmp: wgpu::Buffer,
    ff: wgpu::Buffer,
    slots: SlotOffsets,
}

struct Groups {
    embed: Vec<wgpu::BindGroup>,
    embd_norm: wgpu::BindGroup,
    layers: Vec<LayerGroups>,
    pool: wgpu::BindGroup,
}

struct LayerGroups {
    qkv: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    attn_output: wgpu::BindGroup,
    attn_norm: wgpu::BindGroup,
    ffn_up: wgpu::BindGroup,
    ffn_down: wgpu::BindGroup,
    output_norm: wgpu::BindGroup,
}

impl Workspace {
    fn new(ctx: &GpuContext, c: &EncoderConfig, w: &GpuWeights, tokens: usize) -> Workspace {
        let d = &ctx.device;
        let k = &ctx.kernels;
        let buffer = |label: &str, floats: usize, extra: wgpu::BufferUsages| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (floats.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
                mapped_at_creation: false,
            })
        };
        let none = wgpu::BufferUsages::empty();
        let ids = buffer("ids", tokens, none);
        let lens = buffer("lens", tokens, none);
        let x = buffer("hidden", tokens * c.hidden, wgpu::BufferUsages::COPY_SRC);
        let qkv = buffer("qkv", tokens * 3 * c.hidden, none);
        let ctx_buf = buffer("attention context", tokens * c.hidden, none);
        // Sub-layer outputs before the residual LayerNorm.
        let tmp = buffer("sublayer output", tokens * c.hidden, none);
        let ff = buffer("ffn hidden", tokens * c.ff, none);
        let pooled = buffer("pooled", tokens * c.hidden, wgpu::BufferUsages::COPY_SRC);
        let (template, s) = uniforms(c, w, tokens, 1, tokens);
        let params = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("parameters"),
            size: template.bytes().len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let u = |slot: (u64, u64)| Bind::Uniform(&params, slot.0, slot.1);
        use Bind::Whole as W;
        let embed = w
            .table
            .iter()
            .zip(&s.embed)
            .map(|(part, slot)| {
                bind_group(
                    d,
                    &k.embed_layout,
                    "embed",
                    &[
                        u(*slot),
                        W(&ids),
                        W(&part.quants),
                        W(&part.scales),
                        W(&w.position),
                        W(&w.token_type),
                        W(&x),
                    ],
                )
            })
            .collect();
        // The embedding LayerNorm has no residual; `tmp` only fills the binding.
        let embd_norm = layernorm_group(ctx, &params, s.embd_norm, &x, &tmp, &w.embd_norm);
        let pool = bind_group(
            d,
            &k.pool_layout,
            "pool",
            &[u(s.pool), W(&x), W(&lens), W(&pooled)],
        );
        let mut ws = Workspace {
            tokens,
            params,
            ids,
            lens,
            x,
            pooled,
            groups: Groups {
                embed,
                embd_norm,
                layers: Vec::new(),
                pool,
            },
            qkv,
            ctx_buf,
            tmp,
            ff,
            slots: s,
        };
        for l in w.layers() {
            let groups = ws.layer_groups(ctx, &l);
            ws.groups.layers.push(groups);
        }
        ws
    }

    /// The bind groups of one block over this workspace's buffers.
    fn layer_groups(&self, ctx: &GpuContext, l: &GpuLayer) -> LayerGroups {
        let (d, k, s) = (&ctx.device, &ctx.kernels, &self.slots);
        let u = |slot: (u64, u64)| Bind::Uniform(&self.params, slot.0, slot.1);
        use Bind::Whole as W;
        let mm = |label: &str, slot, input, mat: &GpuMatrix, output| {
            bind_group(
                d,
                &k.matmul_layout,
                label,
                &[
                    u(slot),
                    W(input),
                    W(&mat.quants),
                    W(&mat.scales),
                    W(&mat.bias),
                    W(output),
                ],
            )
        };
        let ln = |slot, norm: &GpuNorm| {
            layernorm_group(ctx, &self.params, slot, &self.x, &self.tmp, norm)
        };
        LayerGroups {
            qkv: mm("qkv", s.qkv, &self.x, &l.qkv, &self.qkv),
            attention: bind_group(
                d,
                &k.attention_layout,
                "attention",
                &[
                    u(s.attention),
                    W(&self.qkv),
                    W(&self.lens),
                    W(&self.ctx_buf),
                ],
            ),
            attn_output: mm(
                "attn_output",
                s.attn_output,
                &self.ctx_buf,
                &l.attn_output,
                &self.tmp,
            ),
            attn_norm: ln(s.residual_norm, &l.attn_norm),
            ffn_up: mm("ffn_up", s.ffn_up, &self.x, &l.ffn_up, &self.ff),
            ffn_down: mm("ffn_down", s.ffn_down, &self.ff, &l.ffn_down, &self.tmp),
            output_norm: ln(s.residual_norm, &l.output_norm),
        }
    }
}

/// A LayerNorm's bind group: `x ← LayerNorm(x + tmp)` (or of `x` alone, as the slot says).
fn layernorm_group(
    ctx: &GpuContext,
    params: &wgpu::Buffer,
    slot: (u64, u64),
    x: &wgpu::Buffer,
    tmp: &wgpu::Buffer,
    norm: &GpuNorm,
) -> wgpu::BindGroup {
    bind_group(
        &ctx.device,
        &ctx.kernels.layernorm_layout,
        "layernorm",
        &[
            Bind::Uniform(params, slot.0, slot.1),
            Bind::Whole(x),
            Bind::Whole(tmp),
            Bind::Whole(&norm.weight),
            Bind::Whole(&norm.bias),
        ],
    )
}
