//! Each kernel on its own, on host data: upload the inputs, dispatch once, read the output
//! back. This is how the tests hold every kernel against a CPU twin, and a small executable
//! statement of each kernel's contract. The encoder does not go through here (it keeps
//! everything on the GPU and records all kernels into one submission).

use xlalign_core::error::{Error, Result};
use xlalign_core::tensor::Tensor;

use crate::context::{ErrorScopes, GpuContext};
use crate::kernels::{
    bind_group, matmul_groups, AttentionParams, Bind, EmbedParams, Epilogue, LayerNormParams,
    MatmulParams, PoolParams, ATTENTION_Q_TILE, MAX_HEAD_DIM,
};
use crate::weights::{upload_table, GpuMatrix, WeightType};

/// One binding of a single dispatch.
enum Arg<'a> {
    Uniform(&'a [u8]),
    Read(&'a [u8]),
    /// A buffer the kernel writes, with its initial contents; read back afterwards.
    Out(&'a [u8]),
    /// An already uploaded buffer.
    Buffer(&'a wgpu::Buffer),
}

/// Runs `pipeline` once with `args` bound in order and returns the `Out` buffer's contents.
async fn dispatch_once(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    args: &[Arg<'_>],
    groups: &[(u32, u32, u32)],
) -> Result<Vec<f32>> {
    use wgpu::util::DeviceExt;
    let d = &ctx.device;
    let scopes = ErrorScopes::push(d);
    let max = ctx.max_binding_bytes();
    let buffers: Vec<Option<wgpu::Buffer>> = args
        .iter()
        .map(|a| {
            let (bytes, usage) = match a {
                Arg::Uniform(b) => (*b, wgpu::BufferUsages::UNIFORM),
                Arg::Read(b) => (*b, wgpu::BufferUsages::STORAGE),
                Arg::Out(b) => (
                    *b,
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                ),
                Arg::Buffer(_) => return Ok(None),
            };
            if bytes.len() as u64 > max {
                return Err(Error::Backend(format!(
                    "{} bytes exceed the storage-binding limit of {max}",
                    bytes.len()
                )));
            }
            let contents: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
            Ok(Some(d.create_buffer_init(
                &wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents,
                    usage,
                },
            )))
        })
        .collect::<Result<_>>()?;
    let binds: Vec<Bind<'_>> = args
        .iter()
        .zip(&buffers)
        .map(|(a, b)| match (a, b) {
            (Arg::Buffer(buf), _) => Bind::Whole(buf),
            (_, Some(buf)) => Bind::Whole(buf),
            (_, None) => unreachable!("every non-Buffer argument was uploaded"),
        })
        .collect();
    let group = bind_group(d, layout, "op", &binds);
    let out_index = args
        .iter()
        .position(|a| matches!(a, Arg::Out(_)))
        .expect("an output argument");
    let out = buffers[out_index].as_ref().expect("uploaded output");
    let staging = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("op readback"),
        size: out.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("op") });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("op"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &group, &[]);
        for &(x, y, z) in groups {
            pass.dispatch_workgroups(x, y, z);
        }
    }
    enc.copy_buffer_to_buffer(out, 0, &staging, 0, out.size());
    ctx.queue.submit([enc.finish()]);
    scopes.check("running a kernel").await?;
    let data = ctx.read_back(&staging, out.size()).await?;
    if let Some(e) = ctx.take_uncaptured() {
        return Err(Error::Backend(format!(
            "GPU error while running a kernel: {e}"
        )));
    }
    Ok(data)
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::Input(format!(
            "{what}: {got} values, expected {want}"
        )));
    }
    Ok(())
}

/// `y = x·Wᵀ + b`, then `epilogue`; `x` is `[m, k]`, `w` is `[n, k]` in any stored type,
/// the result `[m, n]`.
pub async fn matmul(
    ctx: &GpuContext,
    x: &[f32],
    m: usize,
    w: &Tensor,
    bias: &[f32],
    epilogue: Epilogue,
) -> Result<Vec<f32>> {
    matmul_repeated(ctx, x, m, w, bias, epilogue, 1).await
}

/// [`matmul`] dispatched `repeats` times in one submission (each writing the same result),
/// for timing the kernel: the time beyond a single run is kernel time alone, without the
/// uploads, the submission and the readback.
pub async fn matmul_repeated(
    ctx: &GpuContext,
    x: &[f32],
    m: usize,
    w: &Tensor,
    bias: &[f32],
    epilogue: Epilogue,
    repeats: usize,
) -> Result<Vec<f32>> {
    let (n, k) = (w.n_rows(), w.row_len());
    check_len("matmul input", x.len(), m * k)?;
    let mat = GpuMatrix::upload(ctx, "op weight", &[w], bias)?;
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        _pad: 0,
    };
    let (gx, gy) = matmul_groups(m as u32, n as u32);
    let out = vec![0u8; m * n * 4];
    dispatch_once(
        ctx,
        &ctx.kernels.matmul(mat.wtype, epilogue),
        &ctx.kernels.matmul_layout,
        &[
            Arg::Uniform(bytemuck::bytes_of(&params)),
            Arg::Read(bytemuck::cast_slice(x)),
            Arg::Buffer(&mat.quants),
            Arg::Buffer(&mat.scales),
            Arg::Buffer(&mat.bias),
            Arg::Out(&out),
        ],
        &vec![(gx, gy, 1); repeats.max(1)],
    )
    .await
    .map(|mut v| {
        v.truncate(m * n);
        v
    })
}

/// Row-wise `LayerNorm(x + residual)` over rows of `n` values.
pub async fn layer_norm(
    ctx: &GpuContext,
    x: &[f32],
    residual: Option<&[f32]>,
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Result<Vec<f32>> {
    if n == 0 || !x.len().is_multiple_of(n) {
        return Err(Error::Input(format!(
            "layer_norm: {} values are not rows of {n}",
            x.len()
        )));
    }
    check_len("layer_norm gamma", gamma.len(), n)?;
    check_len("layer_norm beta", beta.len(), n)?;
    if let Some(r) = residual {
        check_len("layer_norm residual", r.len(), x.len())?;
    }
    let rows = x.len() / n;
    let params = LayerNormParams {
        rows: rows as u32,
        n: n as u32,
        eps,
        has_residual: residual.is_some() as u32,
    };
    let zero = [0f32];
    dispatch_once(
        ctx,
        &ctx.kernels.layernorm(),
        &ctx.kernels.layernorm_layout,
        &[
            Arg::Uniform(bytemuck::bytes_of(&params)),
            Arg::Out(bytemuck::cast_slice(x)),
            Arg::Read(bytemuck::cast_slice(residual.unwrap_or(&zero))),
            Arg::Read(bytemuck::cast_slice(gamma)),
            Arg::Read(bytemuck::cast_slice(beta)),
        ],
        &[(rows as u32, 1, 1)],
    )
    .await
}

/// Attention over a padded batch: `qkv` is `[lens.len() · seq_len, 3 · heads · head_dim]`
/// (q, k, v side by side); returns the context `[lens.len() · seq_len, heads · head_dim]`.
pub async fn attention(
    ctx: &GpuContext,
    qkv: &[f32],
    lens: &[u32],
    seq_len: usize,
    heads: usize,
    head_dim: usize,
) -> Result<Vec<f32>> {
    if head_dim == 0 || head_dim > MAX_HEAD_DIM as usize {
        return Err(Error::Input(format!(
            "attention: head size {head_dim} (1..={MAX_HEAD_DIM})"
        )));
    }
    let hidden = heads * head_dim;
    let b = lens.len();
    check_len("attention qkv", qkv.len(), b * seq_len * 3 * hidden)?;
    if lens.iter().any(|&l| l == 0 || l as usize > seq_len) {
        return Err(Error::Input(
            "attention: every length must be in 1..=seq_len".into(),
        ));
    }
    let params = AttentionParams {
        batch: b as u32,
        seq_len: seq_len as u32,
        heads: heads as u32,
        hidden: hidden as u32,
        scale: 1.0 / (head_dim as f32).sqrt(),
        _pad: [0; 3],
    };
    let out = vec![0u8; b * seq_len * hidden * 4];
    dispatch_once(
        ctx,
        &ctx.kernels.attention(head_dim as u32),
        &ctx.kernels.attention_layout,
        &[
            Arg::Uniform(bytemuck::bytes_of(&params)),
            Arg::Read(bytemuck::cast_slice(qkv)),
            Arg::Read(bytemuck::cast_slice(lens)),
            Arg::Out(&out),
        ],
        &[(
            (seq_len as u32).div_ceil(ATTENTION_Q_TILE),
            heads as u32,
            b as u32,
        )],
    )
    .await
}

/// Embedding gather without the LayerNorm: row `ids[t]` of `table`, plus position row
/// `t % seq_len + pos_offset`, plus `token_type`. `rows_per_part` forces the table to be
/// split as it would be on a device with a small storage-binding limit.
// The arguments are the kernel's inputs one for one; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn embed(
    ctx: &GpuContext,
    table: &Tensor,
    position: &[f32],
    token_type: &[f32],
    ids: &[u32],
    seq_len: usize,
    pos_offset: usize,
    rows_per_part: Option<usize>,
) -> Result<Vec<f32>> {
    let hidden = table.row_len();
    check_len("embed token_type", token_type.len(), hidden)?;
    if seq_len == 0 || !ids.len().is_multiple_of(seq_len) {
        return Err(Error::Input(
            "embed: ids must be whole sequences of seq_len".into(),
        ));
    }
    if (seq_len + pos_offset) * hidden > position.len() {
        return Err(Error::Input("embed: position table too short".into()));
    }
    if let Some(id) = ids.iter().find(|&&id| id as usize >= table.n_rows()) {
        return Err(Error::Input(format!("embed: id {id} outside the table")));
    }
    let parts = upload_table(
        ctx,
        &table.name,
        table.dtype,
        hidden,
        &table.data,
        rows_per_part,
    )?;
    let wt: WeightType = table.dtype.into();
    let mut out: Vec<f32> = vec![0.0; ids.len() * hidden];
    // Each part fills only its own tokens; the others keep what the previous parts wrote.
    for part in &parts {
        let params = EmbedParams {
            tokens: ids.len() as u32,
            hidden: hidden as u32,
            seq_len: seq_len as u32,
            pos_offset: pos_offset as u32,
            row_start: part.row_start,
            row_end: part.row_end,
            _pad: [0; 2],
        };
        out = dispatch_once(
            ctx,
            &ctx.kernels.embed(wt),
            &ctx.kernels.embed_layout,
            &[
                Arg::Uniform(bytemuck::bytes_of(&params)),
                Arg::Read(bytemuck::cast_slice(ids)),
                Arg::Buffer(&part.quants),
                Arg::Buffer(&part.scales),
                Arg::Read(bytemuck::cast_slice(position)),
                Arg::Read(bytemuck::cast_slice(token_type)),
                Arg::Out(bytemuck::cast_slice(&out)),
            ],
            &[(ids.len() as u32, 1, 1)],
        )
        .await?;
    }
    Ok(out)
}

/// Pooled, L2-normalised vectors of a padded batch `x` `[lens.len() · seq_len, hidden]`:
/// the mean of each sequence's first `lens[b]` rows, or its first row.
pub async fn pool(
    ctx: &GpuContext,
    x: &[f32],
    lens: &[u32],
    seq_len: usize,
    hidden: usize,
    first_token: bool,
) -> Result<Vec<f32>> {
    let b = lens.len();
    check_len("pool input", x.len(), b * seq_len * hidden)?;
    if lens.iter().any(|&l| l == 0 || l as usize > seq_len) {
        return Err(Error::Input(
            "pool: every length must be in 1..=seq_len".into(),
        ));
    }
    let params = PoolParams {
        batch: b as u32,
        seq_len: seq_len as u32,
        hidden: hidden as u32,
        mode: first_token as u32,
    };
    let out = vec![0u8; b * hidden * 4];
    dispatch_once(
        ctx,
        &ctx.kernels.pool(),
        &ctx.kernels.pool_layout,
        &[
            Arg::Uniform(bytemuck::bytes_of(&params)),
            Arg::Read(bytemuck::cast_slice(x)),
            Arg::Read(bytemuck::cast_slice(lens)),
            Arg::Out(&out),
        ],
        &[(b as u32, 1, 1)],
    )
    .await
}
