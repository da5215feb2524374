"""A drop-in for SimAlign's ``SentenceAligner``: a SimAlign script changes one import::

    from xlalign.simalign import SentenceAligner     # was: from simalign import SentenceAligner

    aligner = SentenceAligner(matching_methods="mai", token_type="bpe")
    aligns = aligner.get_word_aligns("Sir Nils Olav III. was knighted".split(),
                                     "Sir Nils Olav der Dritte wurde ausgezeichnet".split())
    aligns["inter"], aligns["itermax"], aligns["mwmf"]   # lists of (src, tgt) word indices

The encoder is xlalign's (multilingual-e5-small, 4-bit), not SimAlign's mBERT or XLM-R:
``model`` names a GGUF file, or any other value (SimAlign's ``"bert"``, ``"xlmr"``, a
Hugging Face name) means xlalign's default model. ``layer`` defaults to the model's
recommended layer (7 of 12) rather than SimAlign's 8, and the methods are xlalign's
implementations of the same rules; README says where results differ and why.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

from . import Aligner
from .errors import InputError

#: SimAlign's method letters and result keys → xlalign's options.
METHODS = {
    "a": ("inter", {"method": "argmax"}),
    "m": ("mwmf", {"method": "match"}),
    "i": ("itermax", {"method": "itermax"}),
    "f": ("fwd", {"method": "argmax", "direction": "forward"}),
    "r": ("rev", {"method": "argmax", "direction": "reverse"}),
}


class SentenceAligner:
    """SimAlign's ``SentenceAligner(model, token_type, distortion, matching_methods, device,
    layer)`` on xlalign. ``token_type="bpe"`` aligns subwords and lifts the links to words;
    ``"word"`` averages each word's subwords first, as SimAlign does."""

    def __init__(
        self,
        model: str = "bert",
        token_type: str = "bpe",
        distortion: float = 0.0,
        matching_methods: str = "mai",
        device: str = "cpu",
        layer: Optional[int] = None,
        **aligner_options,
    ):
        if token_type not in ("bpe", "word"):
            raise InputError(f"invalid input: token_type must be 'bpe' or 'word', got {token_type!r}")
        unknown = [m for m in matching_methods if m not in METHODS]
        if unknown or not matching_methods:
            raise InputError(
                f"invalid input: matching_methods takes letters from {''.join(METHODS)}, got {matching_methods!r}"
            )
        path = model if isinstance(model, (str, os.PathLike)) and str(model).endswith(".gguf") else None
        backend = "cpu" if str(device).startswith("cpu") else "auto"
        self.aligner = Aligner(path, backend=backend, **aligner_options)
        self.token_type = token_type
        self.distortion = float(distortion)
        self.layer = layer
        self.matching_methods = [METHODS[m] for m in dict.fromkeys(matching_methods)]
        self._level = "subword" if token_type == "bpe" else "word-average"

    def get_word_aligns(
        self, src_sent: Union[str, Sequence[str]], trg_sent: Union[str, Sequence[str]]
    ) -> Dict[str, List[Tuple[int, int]]]:
        """The word alignments of one pair by each matching method, keyed as SimAlign keys
        them (``inter``, ``mwmf``, ``itermax``, ``fwd``, ``rev``). A string is split at
        whitespace, as SimAlign does."""
        src = src_sent.split() if isinstance(src_sent, str) else list(src_sent)
        tgt = trg_sent.split() if isinstance(trg_sent, str) else list(trg_sent)
        out: Dict[str, List[Tuple[int, int]]] = {name: [] for name, _ in self.matching_methods}
        if not src or not tgt:
            return out
        encoded = self.aligner.encode(src, tgt, layer=self.layer, sentence_cosine=False)
        for name, options in self.matching_methods:
            a = encoded.extract(level=self._level, distortion=self.distortion, **options)
            out[name] = sorted(a.pairs())
        return out
