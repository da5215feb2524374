"""The encoder as JAX code, for training: weights read from xlalign's GGUF file, the forward
pass of a post-LayerNorm BERT, and the writing of tuned weights back as GGML tensors.

The forward pass is the core's (`crates/xlalign-core/src/cpu/encoder.rs`) in f32: the core
also rounds activations to int8 before each quantised matmul, which this code does not, so
states agree to a cosine of about 0.999, not bit for bit (`parity` measures it against the
Python package on real sentences).

Layer numbering is the core's: layer 0 is the embeddings, layer k the output of block k − 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gguf
from gguf.quants import dequantize, quantize

import jax
import jax.numpy as jnp

BLOCK_TENSORS = [
    "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
    "attn_v.bias", "attn_output.weight", "attn_output.bias", "attn_output_norm.weight",
    "attn_output_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight",
    "ffn_down.bias", "layer_output_norm.weight", "layer_output_norm.bias",
]


@dataclass
class Config:
    hidden: int
    layers: int
    heads: int
    eps: float
    gelu_tanh: bool


class Weights:
    """The tensors of one GGUF model as f32 arrays (GGUF's row-major `[out, in]` for linear
    weights), and what is needed to write tuned ones back in the file's types."""

    def __init__(self, path: Path):
        self.path = Path(path)
        reader = gguf.GGUFReader(str(path))
        field = lambda k: reader.fields[k].contents()
        self.config = Config(
            hidden=int(field("bert.embedding_length")),
            layers=int(field("bert.block_count")),
            heads=int(field("bert.attention.head_count")),
            eps=float(field("bert.attention.layer_norm_epsilon")),
            gelu_tanh=reader.fields.get("xlalign.hidden_act") is not None
            and field("xlalign.hidden_act") == "gelu_tanh",
        )
        self.position_offset = int(field("xlalign.position_offset"))
        self.defaults = {
            k: reader.fields[k].contents()
            for k in reader.fields
            if k.startswith("xlalign.align.") or k.startswith("xlalign.prefix.")
        }
        self.types: dict[str, gguf.GGMLQuantizationType] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.stored: dict[str, np.ndarray] = {}  # each tensor as the file stores it
        for t in reader.tensors:
            self.types[t.name] = t.tensor_type
            data = np.asarray(t.data)
            self.stored[t.name] = data
            if t.tensor_type == gguf.GGMLQuantizationType.F32:
                arr = data.astype(np.float32).reshape([int(d) for d in reversed(t.shape)])
            else:
                arr = dequantize(data, t.tensor_type)
            self.arrays[t.name] = arr

    def block(self, i: int) -> dict[str, np.ndarray]:
        return {n: self.arrays[f"blk.{i}.{n}"] for n in BLOCK_TENSORS}

    def encode_tensor(self, name: str, value: np.ndarray) -> np.ndarray:
        """A tuned tensor as the bytes (Q4_0 and the like) or floats the file stores."""
        kind = self.types[name]
        value = np.asarray(value, dtype=np.float32)
        if kind == gguf.GGMLQuantizationType.F32:
            return value
        return quantize(value, kind)

    def requantised(self, name: str, value: np.ndarray) -> np.ndarray:
        """What the core will compute with: the tensor after a round trip through its type."""
        kind = self.types[name]
        if kind == gguf.GGMLQuantizationType.F32:
            return np.asarray(value, dtype=np.float32)
        return dequantize(quantize(np.asarray(value, dtype=np.float32), kind), kind)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * w + b


def gelu(x, tanh: bool):
    if tanh:
        return jax.nn.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + jax.scipy.special.erf(x / math.sqrt(2.0)))


def block_forward(p, x, mask, cfg: Config):
    """One post-LayerNorm block. `x` [B, L, H]; `mask` [B, L] with 1 for real tokens."""
    b, l, h = x.shape
    nh = cfg.heads
    hd = h // nh

    def lin(name, t):
        return t @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def heads(t):
        return t.reshape(b, l, nh, hd).transpose(0, 2, 1, 3)

    q, k, v = heads(lin("attn_q", x)), heads(lin("attn_k", x)), heads(lin("attn_v", x))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
    scores = jnp.where(mask[:, None, None, :] > 0, scores, -1e9)
    ctx = jax.nn.softmax(scores, axis=-1) @ v
    ctx = ctx.transpose(0, 2, 1, 3).reshape(b, l, h)
    x = layer_norm(
        x + lin("attn_output", ctx), p["attn_output_norm.weight"], p["attn_output_norm.bias"], cfg.eps
    )
    ff = lin("ffn_down", gelu(lin("ffn_up", x), cfg.gelu_tanh))
    return layer_norm(x + ff, p["layer_output_norm.weight"], p["layer_output_norm.bias"], cfg.eps)


def embed(emb, ids: np.ndarray, cfg: Config, position_offset: int = 0) -> np.ndarray:
    """Layer 0 for `[..., L]` ids, in numpy: word + position + token type 0, normalised, as
    `[N, L, H]` (leading axes flattened). Computed outside the compiled steps, so the 250k-row
    table (`emb`, from `embedding_tables`) is never a constant of one of them: each compiled
    shape would hold a copy."""
    flat = ids.reshape(-1, ids.shape[-1])
    positions = emb["pos"][position_offset : position_offset + flat.shape[1]]
    x = emb["word"][flat] + positions[None] + emb["type"][0]
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return ((x - mu) / np.sqrt(var + cfg.eps) * emb["norm_w"] + emb["norm_b"]).astype(np.float32)


def forward(blocks, x, mask, cfg: Config):
    """Runs `blocks` (a list of per-block parameter dicts) on layer-0 states `x`; returns
    the states after each block."""
    out = []
    for p in blocks:
        x = block_forward(p, x, mask, cfg)
        out.append(x)
    return out


def embedding_tables(w: Weights) -> dict[str, np.ndarray]:
    return {
        "word": w.arrays["token_embd.weight"],
        "pos": w.arrays["position_embd.weight"],
        "type": w.arrays["token_types.weight"],
        "norm_w": w.arrays["token_embd_norm.weight"],
        "norm_b": w.arrays["token_embd_norm.bias"],
    }
