"""Tuned tensors to files: a delta GGUF holding only them (what the repository stores and
``xlalign delta apply`` builds the full model from), or a patched copy of the base model.

Tensors are re-quantised to the base file's type for each (Q4_0 weights, f32 biases and
norms), so what is written is what users will run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

import gguf

from .encoder import Weights




def changed(weights: Weights, tuned: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors whose stored form differs from the base's, in the stored form."""
    reader = gguf.GGUFReader(str(weights.path))
    stored = {t.name: np.asarray(t.data) for t in reader.tensors}
    out = {}
    for name, value in tuned.items():
        data = weights.encode_tensor(name, value)
        if data.tobytes() != stored[name].tobytes():
            out[name] = data
    return out


def write_delta(weights: Weights, tuned: dict[str, np.ndarray], path: Path, keys: dict[str, str]):
    data = changed(weights, tuned)
    writer = gguf.GGUFWriter(str(path), arch="bert")
    for k, v in keys.items():
        writer.add_string(k, v)
    for name, arr in data.items():
        kind = weights.types[name]
        if kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, arr.astype(np.float32))
        else:
            writer.add_tensor(name, arr, raw_shape=arr.shape, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_patched(weights: Weights, tuned: dict[str, np.ndarray], path: Path):
    """A copy of the base with the tuned tensors' bytes replaced (same sizes)."""
    shutil.copyfile(weights.path, path)
    reader = gguf.GGUFReader(str(weights.path))
    where = {t.name: (t.data_offset, t.n_bytes) for t in reader.tensors}
    with open(path, "r+b") as f:
        for name, arr in changed(weights, tuned).items():
            offset, size = where[name]
            raw = np.ascontiguousarray(arr).tobytes()
            assert len(raw) == size, (name, len(raw), size)
            f.seek(offset)
            f.write(raw)
