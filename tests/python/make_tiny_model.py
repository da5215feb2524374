"""Writes tiny random Hugging Face checkpoints (config.json, model.safetensors, tokenizer.json)
for converter tests: a BERT with a WordPiece tokenizer and an XLM-RoBERTa with a Unigram
(SentencePiece-style) tokenizer.

Only numpy, safetensors.numpy and the `tokenizers` package are used (no torch).

The weights are larger than a trained model's initialisation on purpose: unit-variance
projections make attention clearly non-uniform and put GELU inputs in its non-linear range,
so a transposed matrix, a wrong head split, a shifted position table or the wrong GELU all
change the hidden states a lot.

    python tests/python/make_tiny_model.py OUT_DIR [--kind bert|xlm-roberta] [--seed N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

HIDDEN = 64
LAYERS = 2
HEADS = 4
INTERMEDIATE = 128

WORDS = (
    "the a an of to in and is was for on with as by at from that this it be are or not have has "
    "cat dog bird fish house tree river city road car book table chair window door water fire "
    "small large red blue green old new quick slow happy sad good bad first last long short "
    "run runs ran walk walks see sees saw eat eats ate read reads sleep sleeps jump jumps "
    "morning evening night day week year time people child children man woman friend teacher"
).split()

# Words the tokenizers do not know whole, so they split into sub-words.
SPLIT_WORDS = ["unhappiness", "rivers", "teachers", "windows"]

TEXTS = [
    "the quick dog runs to the river",
    "a small bird sleeps in the old tree",
    "the teacher reads a long book in the evening",
    "children eat fish and walk to the city",
    "unhappiness",
    "the cat",
    "rivers and windows and teachers",
    "happy people see new friends every morning",
]


def _bert_tokenizer() -> Tokenizer:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = special + letters + ["##" + c for c in letters] + WORDS + ["un", "##happi", "##ness", "##s", "##er"]
    vocab = {}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(special)
    return tok


def _xlmr_tokenizer() -> Tokenizer:
    special = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    rng = np.random.default_rng(7)
    pieces = [("▁", -3.0)]
    pieces += [(c, -6.0 - 0.01 * i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]
    pieces += [("▁" + w, float(-4.0 - rng.random())) for w in WORDS]
    pieces += [("▁un", -5.0), ("happi", -5.5), ("ness", -5.5), ("s", -5.2), ("er", -5.4)]
    vocab = special + pieces + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return tok


def _weights(rng: np.random.Generator, vocab: int, positions: int, type_vocab: int) -> dict[str, np.ndarray]:
    h, ff = HIDDEN, INTERMEDIATE

    def lin(out: int, inp: int) -> np.ndarray:
        return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)

    def vec(n: int, scale: float = 0.1, base: float = 0.0) -> np.ndarray:
        return (base + scale * rng.standard_normal(n)).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": rng.standard_normal((vocab, h)).astype(np.float32),
        "embeddings.position_embeddings.weight": (0.5 * rng.standard_normal((positions, h))).astype(np.float32),
        "embeddings.token_type_embeddings.weight": (0.5 * rng.standard_normal((type_vocab, h))).astype(np.float32),
        "embeddings.LayerNorm.weight": vec(h, base=1.0),
        "embeddings.LayerNorm.bias": vec(h),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, out, inp in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", ff, h),
            ("output.dense", h, ff),
        ]:
            w[p + name + ".weight"] = lin(out, inp)
            w[p + name + ".bias"] = vec(out)
        for name in ["attention.output.LayerNorm", "output.LayerNorm"]:
            w[p + name + ".weight"] = vec(h, base=1.0)
            w[p + name + ".bias"] = vec(h)
    return w


def make_bert(out: Path, seed: int = 1) -> dict:
    """A BertForPreTraining-style checkpoint: `bert.` names, a pooler, an MLM head and the
    `position_ids` buffer, all of which the converter must skip. The embedding table has a few
    more rows than the tokenizer has tokens (as multilingual-e5-small does)."""
    out.mkdir(parents=True, exist_ok=True)
    tok = _bert_tokenizer()
    vocab = tok.get_vocab_size(with_added_tokens=True) + 6
    positions = 64
    config = {
        "architectures": ["BertForPreTraining"],
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": positions,
        "type_vocab_size": 2,
        "vocab_size": vocab,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }
    rng = np.random.default_rng(seed)
    w = {"bert." + k: v for k, v in _weights(rng, vocab, positions, 2).items()}
    w["bert.embeddings.position_ids"] = np.arange(positions, dtype=np.int64)[None, :]
    w["bert.pooler.dense.weight"] = (0.1 * rng.standard_normal((HIDDEN, HIDDEN))).astype(np.float32)
    w["bert.pooler.dense.bias"] = np.zeros(HIDDEN, np.float32)
    w["cls.predictions.bias"] = np.zeros(vocab, np.float32)
    w["cls.predictions.transform.dense.weight"] = (0.1 * rng.standard_normal((HIDDEN, HIDDEN))).astype(np.float32)
    save_file(w, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tok.save(str(out / "tokenizer.json"))
    return config


def make_xlmr(out: Path, seed: int = 2) -> dict:
    """An XLMRobertaModel checkpoint: no name prefix, weights stored as float16, pad id 1 so
    positions start at 2, 66 position rows (64 usable, like 514 → 512), one token type, the
    tanh GELU, and a tokenizer.json with a truncation setting the converter must remove."""
    out.mkdir(parents=True, exist_ok=True)
    tok = _xlmr_tokenizer()
    vocab = tok.get_vocab_size(with_added_tokens=True)
    positions = 66
    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu_new",
        "max_position_embeddings": positions,
        "type_vocab_size": 1,
        "vocab_size": vocab,
        "layer_norm_eps": 1e-5,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "position_embedding_type": "absolute",
        "torch_dtype": "float16",
    }
    rng = np.random.default_rng(seed)
    w = {k: v.astype(np.float16) for k, v in _weights(rng, vocab, positions, 1).items()}
    save_file(w, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tok.enable_truncation(max_length=positions - 2)
    tok.save(str(out / "tokenizer.json"))
    return config


KINDS = {"bert": make_bert, "xlm-roberta": make_xlmr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--kind", choices=sorted(KINDS), default="bert")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    kw = {} if a.seed is None else {"seed": a.seed}
    KINDS[a.kind](a.out, **kw)
    print(a.out)


if __name__ == "__main__":
    main()
