"""Tuned tensors to a delta GGUF holding only them, from which ``xlalign delta apply``
builds the full model (and ``xlalign delta make`` the stored delta with its manifest).

Tensors are re-quantised to the base file's type for each (Q4_0 weights, f32 biases and
norms), so what is written is what users will run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

import gguf

from .encoder import Weights




def changed(weights: Weights, tuned: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors whose stored form differs from the base's, in the stored form."""
    out = {}
    for name, value in tuned.items():
        data = weights.encode_tensor(name, value)
        if data.tobytes() != weights.stored[name].tobytes():
            out[name] = data
    return out


def base_weights_sha256(binary: str, model: Path) -> str:
    """The base's weights digest, as the core computes it (`xlalign info`)."""
    out = subprocess.run([binary, "info", str(model)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("weights:"):
            return line.split()[2]
    raise RuntimeError(f"`xlalign info {model}` printed no weights digest")


def write_delta(weights: Weights, tuned: dict[str, np.ndarray], path: Path, keys: dict, base_sha256: str):
    """The changed tensors and `keys` (str or float values) as a delta `xlalign delta apply`
    reads (u8 rows of Q4_0 blocks: gguf-py takes their last dimension as bytes)."""
    data = changed(weights, tuned)
    writer = gguf.GGUFWriter(str(path), arch="bert")
    writer.add_string("xlalign.delta.base_weights_sha256", base_sha256)
    for k, v in keys.items():
        if isinstance(v, str):
            writer.add_string(k, v)
        else:
            writer.add_float32(k, float(v))
    for name, arr in data.items():
        kind = weights.types[name]
        if kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, arr.astype(np.float32))
        else:
            writer.add_tensor(name, arr, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(data)
