"""A float64 numpy forward pass of a BERT / XLM-RoBERTa encoder, written from Hugging Face's
`BertModel` / `XLMRobertaModel` semantics (post-LayerNorm blocks, exact erf GELU or its tanh
approximation, absolute positions, token type 0, no padding mask), for checking xlalign's
runtime and converter against something independent of both.

Weights come either from the Hugging Face checkpoint (`load_checkpoint`) or from a converted
GGUF file dequantised by the `gguf` package (`load_gguf`); the second separates runtime
errors from quantisation error.

    python tests/python/reference_forward.py CHECKPOINT_DIR ID [ID ...] [--layer N]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


@dataclass
class Encoder:
    hidden: int
    layers: int
    heads: int
    eps: float
    act: str  # "gelu" (erf) or "gelu_tanh"
    first_position: int  # position id of the first token
    w: dict  # canonical HF names without prefix → float64 arrays

    def forward(self, ids: list[int], layers: list[int] | None = None) -> list[np.ndarray]:
        """Hidden states [len(ids), hidden] for each requested layer (0 = embeddings after
        their LayerNorm, i = after block i); all layers when `layers` is None."""
        want = list(range(self.layers + 1)) if layers is None else list(layers)
        w = self.w
        ids = np.asarray(ids, dtype=np.int64)
        pos = self.first_position + np.arange(len(ids))
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][pos]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        states = [x]
        d = self.hidden // self.heads
        for i in range(max(want)):
            p = f"encoder.layer.{i}."

            def lin(name: str, v: np.ndarray) -> np.ndarray:
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (lin(f"attention.self.{n}", x) for n in ("query", "key", "value"))
            ctx = np.empty_like(x)
            for hd in range(self.heads):
                sl = slice(hd * d, (hd + 1) * d)
                s = q[:, sl] @ k[:, sl].T / math.sqrt(d)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                ctx[:, sl] = (s / s.sum(axis=1, keepdims=True)) @ v[:, sl]
            x = layer_norm(
                x + lin("attention.output.dense", ctx),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            hmid = gelu(lin("intermediate.dense", x), self.act)
            x = layer_norm(
                x + lin("output.dense", hmid), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
            states.append(x)
        return [states[l] for l in want]

    def embed(self, ids: list[int]) -> np.ndarray:
        """Mean over all tokens of the last layer, L2-normalised (E5 / sentence-transformers)."""
        (last,) = self.forward(ids, [self.layers])
        v = last.mean(axis=0)
        return v / max(np.linalg.norm(v), 1e-6)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu(x: np.ndarray, act: str) -> np.ndarray:
    if act == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if act == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"activation {act}")


_ACTS = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def load_checkpoint(path: Path) -> Encoder:
    """From a Hugging Face folder. Positions follow HF: RoBERTa-style models number them from
    `pad_token_id + 1`, BERT from 0."""
    from safetensors.numpy import load_file

    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    raw = load_file(str(path / "model.safetensors"))
    w = {}
    for k, v in raw.items():
        for prefix in ("bert.", "roberta."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        w[k] = v.astype(np.float64)
    roberta = cfg["model_type"] in ("xlm-roberta", "roberta")
    return Encoder(
        hidden=cfg["hidden_size"],
        layers=cfg["num_hidden_layers"],
        heads=cfg["num_attention_heads"],
        eps=cfg.get("layer_norm_eps", 1e-12),
        act=_ACTS[cfg.get("hidden_act", "gelu")],
        first_position=cfg.get("pad_token_id", 1) + 1 if roberta else 0,
        w=w,
    )


_GGUF_NAMES = {
    "token_embd.weight": "embeddings.word_embeddings.weight",
    "position_embd.weight": "embeddings.position_embeddings.weight",
    "token_types.weight": "embeddings.token_type_embeddings.weight",
    "token_embd_norm.weight": "embeddings.LayerNorm.weight",
    "token_embd_norm.bias": "embeddings.LayerNorm.bias",
}
_GGUF_BLOCK = {
    "attn_q": "attention.self.query",
    "attn_k": "attention.self.key",
    "attn_v": "attention.self.value",
    "attn_output": "attention.output.dense",
    "attn_output_norm": "attention.output.LayerNorm",
    "ffn_up": "intermediate.dense",
    "ffn_down": "output.dense",
    "layer_output_norm": "output.LayerNorm",
}


def gguf_field(reader, key: str):
    """A scalar or string metadata value from a `gguf.GGUFReader`, or None."""
    f = reader.fields.get(key)
    if f is None:
        return None
    if hasattr(f, "contents"):
        return f.contents()
    part = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(part).decode("utf-8")
    return part.tolist()[0]


def gguf_tensors(reader) -> dict[str, np.ndarray]:
    """name → float32 array in the usual outermost-first shape, dequantised by `gguf`."""
    from gguf.quants import dequantize

    out = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        out[t.name] = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)
    return out


def load_gguf(path: Path) -> Encoder:
    """From a converted GGUF file (weights dequantised by the `gguf` package, not by xlalign)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    w = {}
    for name, arr in gguf_tensors(r).items():
        if name in _GGUF_NAMES:
            w[_GGUF_NAMES[name]] = arr.astype(np.float64)
            continue
        _, i, kind, part = name.split(".")
        w[f"encoder.layer.{i}.{_GGUF_BLOCK[kind]}.{part}"] = arr.astype(np.float64)
    return Encoder(
        hidden=int(gguf_field(r, "bert.embedding_length")),
        layers=int(gguf_field(r, "bert.block_count")),
        heads=int(gguf_field(r, "bert.attention.head_count")),
        eps=float(gguf_field(r, "bert.attention.layer_norm_epsilon")),
        act=gguf_field(r, "xlalign.hidden_act") or "gelu",
        first_position=int(gguf_field(r, "xlalign.position_offset") or 0),
        w=w,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="checkpoint folder or .gguf file")
    ap.add_argument("ids", type=int, nargs="+")
    ap.add_argument("--layer", type=int)
    a = ap.parse_args()
    enc = load_gguf(a.model) if a.model.suffix == ".gguf" else load_checkpoint(a.model)
    layer = enc.layers if a.layer is None else a.layer
    (h,) = enc.forward(a.ids, [layer])
    print(json.dumps({"layer": layer, "hidden": h.tolist(), "embedding": enc.embed(a.ids).tolist()}))


if __name__ == "__main__":
    main()
