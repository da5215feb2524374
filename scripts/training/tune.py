"""Fine-tuning the blocks up to the alignment layer for word alignment, awesome-align style
(Dou & Neubig 2021), on the parallel text of ``scripts/training-data.py``.

Objectives, per pair, on the alignment layer's rows (the rows the core extracts between:
specials, the passage prefix and bare ``▁`` left out):

- **self-training** (``so``): the model's own links at this step — both softmax directions
  over ``S·Tᵀ / temperature`` above a threshold, the default method's rule (its threshold, or
  a lower one: ``target_threshold``) — are the targets; the loss is their mean negative
  log-probability in both directions;
- **consistency** (``co``): ``−Σ P_fwd ⊙ P_rev / min(n, m)``, the two directions agreeing;
- **norm** (``norm``): the mean squared row norm kept at the base model's, so that the
  temperature the model file recommends keeps its meaning (self-training alone rewards
  sharper distributions, which a growing norm gives without better links);
- **distillation** (``distill``, optional): the pooled, normalised sentence embedding (last
  layer, mean over tokens) kept at the base model's, so sentence similarity is kept. It runs
  all blocks, the tuned ones and the rest, which makes a step about twice as slow;
- **parallel sentence identification** (``psi``, optional; awesome-align's PSI as a
  contrastive loss): each source's pooled embedding must pick its own translation among
  the batch's targets, and the other way round (InfoNCE at temperature ``psi_temperature``,
  both directions). It asks for what retrieval needs, relative to the other sentences, not
  for the base model's exact vectors as distillation does. Runs all blocks, like distillation.

Only the blocks below the alignment layer are trained; embeddings stay frozen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import jax
import jax.numpy as jnp
import optax

from . import encoder as E

PREFIX_TOKENS_DROPPED = (0, 1, 2, 3)  # <s> <pad> </s> <unk>
BARE_SPACE = 6  # "▁"
BUCKETS = (16, 24, 32, 48, 64)


@dataclass
class Side:
    ids: list[int]
    rows: list[int]  # positions the core extracts between
    spans: list[tuple[int, int]]  # each row's characters in the text (prefix not counted)

    def covering(self, start: int, end: int) -> list[int]:
        """Positions of the rows that overlap characters `start..end`."""
        return [r for r, (a, b) in zip(self.rows, self.spans) if a < end and b > start]


@dataclass
class Pair:
    src: Side
    tgt: Side
    anchors: list[tuple[int, int]]  # (source position, target position) given as links


def side(tokenizer, prefix: str, text: str) -> Side:
    enc = tokenizer.encode(prefix + text)
    keep = [
        (i, (max(a, len(prefix)) - len(prefix), b - len(prefix)))
        for i, (t, (a, b)) in enumerate(zip(enc.ids, enc.offsets))
        if b > len(prefix) and b > a and t not in PREFIX_TOKENS_DROPPED and t != BARE_SPACE
    ]
    return Side(enc.ids, [i for i, _ in keep], [sp for _, sp in keep])


def pair(tokenizer, prefix: str, src: str, tgt: str, lexicon=None) -> Pair:
    s, t = side(tokenizer, prefix, src), side(tokenizer, prefix, tgt)
    links = []
    if lexicon is not None:
        from .anchors import anchors

        for (s0, s1), (t0, t1) in anchors(lexicon, src, tgt):
            links += [(i, j) for i in s.covering(s0, s1) for j in t.covering(t0, t1)]
    return Pair(s, t, links)


def read_pairs(path: Path, limit: int, rng: random.Random) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if " ||| " not in line:
                continue
            s, t = line.rstrip("\n").split(" ||| ", 1)
            if s.strip() and t.strip():
                pairs.append((s, t))
    rng.shuffle(pairs)
    return pairs[:limit]


def batches(items, tokens_per_batch: int, rng: random.Random):
    """Pairs grouped by padded length (one compiled shape per bucket): `(length, [pairs])`."""
    by_bucket: dict[int, list] = {}
    for p in items:
        longest = max(len(p.src.ids), len(p.tgt.ids))
        bucket = next((b for b in BUCKETS if b >= longest), None)
        if bucket is not None and p.src.rows and p.tgt.rows:
            by_bucket.setdefault(bucket, []).append(p)
    out = []
    for length, group in by_bucket.items():
        size = max(1, tokens_per_batch // length)
        rng.shuffle(group)
        for k in range(0, len(group), size):
            out.append((length, group[k : k + size]))
    rng.shuffle(out)
    return out


def arrays(length: int, group):
    n = len(group)
    ids = np.zeros((2, n, length), np.int32)
    att = np.zeros((2, n, length), np.float32)
    rows = np.zeros((2, n, length), np.float32)
    anchors = np.zeros((n, length, length), np.float32)
    for j, p in enumerate(group):
        for s, sd in enumerate((p.src, p.tgt)):
            ids[s, j, : len(sd.ids)] = sd.ids
            ids[s, j, len(sd.ids) :] = 1
            att[s, j, : len(sd.ids)] = 1
            rows[s, j, sd.rows] = 1
        for a, b in p.anchors:
            anchors[j, a, b] = 1
    return ids, att, rows, anchors


def link_probs(hs, ht, ms, mt, temperature):
    """Both softmax directions over the masked dot products: `[B, n, m]` each."""
    sim = jnp.einsum("bih,bjh->bij", hs, ht) / temperature
    valid = (ms[:, :, None] * mt[:, None, :]) > 0
    masked = jnp.where(valid, sim, -1e9)
    logf = jax.nn.log_softmax(masked, axis=2)
    logr = jax.nn.log_softmax(masked, axis=1)
    return jnp.exp(logf), jnp.exp(logr), logf, logr, valid


@dataclass
class Settings:
    temperature: float = 3.0
    threshold: float = 0.3
    # Targets: links whose both probabilities pass this (the default method's threshold when
    # equal; lower takes in links the model is not yet sure of, as awesome-align's 10⁻³).
    target_threshold: float = 0.3
    so: float = 1.0
    co: float = 0.0
    norm: float = 1.0
    distill: float = 0.0
    psi: float = 0.0
    psi_temperature: float = 0.05
    # Dictionary anchors (anchors.py) join the self-training targets.
    anchors: bool = False


def make_step(cfg: E.Config, settings: Settings, base_norm: float, optimizer):
    """Compiled functions of the training step; model parts are arguments, never constants:
    `frozen` the blocks above the tuned ones (for distillation), `x0` the layer-0 states."""
    def pooled(states, att):
        m = att[..., None]
        v = (states * m).sum(1) / m.sum(1)
        return v / jnp.linalg.norm(v, axis=-1, keepdims=True)

    def alignment_states(params, x0, att):
        a = att.reshape(-1, att.shape[-1])
        return E.forward(params, x0, a, cfg)[-1], a

    def own_links(fwd, rev, valid):
        return jax.lax.stop_gradient(
            ((fwd > settings.target_threshold) & (rev > settings.target_threshold) & valid).astype(
                jnp.float32
            )
        )

    def loss_fn(params, frozen, x0, att, rows, anchors, teacher, links=None):
        """The objective; `links` given: scored against those instead of the model's own
        (how held-out loss is compared before and after training)."""
        top, a = alignment_states(params, x0, att)
        b = att.shape[1]
        ms, mt = rows[0], rows[1]
        fwd, rev, logf, logr, valid = link_probs(top[:b], top[b:], ms, mt, settings.temperature)
        if links is None:
            links = own_links(fwd, rev, valid)
            if settings.anchors:
                links = jnp.maximum(links, anchors * valid)
        count = jnp.maximum(links.sum(), 1.0)
        so = -(links * (logf + logr)).sum() / (2.0 * count)
        co = -((fwd * rev * valid).sum((1, 2)) / jnp.minimum(ms.sum(1), mt.sum(1))).mean()
        keep = jnp.concatenate([ms, mt])
        mean_sq = ((top**2).sum(-1) * keep).sum() / keep.sum()
        norm = (mean_sq / base_norm - 1.0) ** 2
        loss = settings.so * so + settings.co * co + settings.norm * norm
        distill = psi = jnp.float32(0.0)
        if settings.distill > 0 or settings.psi > 0:
            y = top
            for p in frozen:
                y = E.block_forward(p, y, a, cfg)
            z = pooled(y, a)
            if settings.distill > 0:
                distill = (1.0 - (z * teacher).sum(-1)).mean()
                loss = loss + settings.distill * distill
            if settings.psi > 0:
                sim = z[:b] @ z[b:].T / settings.psi_temperature
                psi = -(jnp.diagonal(jax.nn.log_softmax(sim, axis=1))
                        + jnp.diagonal(jax.nn.log_softmax(sim, axis=0))).mean() / 2.0
                loss = loss + settings.psi * psi
        return loss, {"so": so, "co": co, "norm": norm, "distill": distill, "psi": psi,
                      "links": links.sum() / b}

    @jax.jit
    def step(params, opt_state, frozen, x0, att, rows, anchors, teacher):
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, frozen, x0, att, rows, anchors, teacher
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, parts

    @jax.jit
    def links_of(params, x0, att, rows):
        top, _ = alignment_states(params, x0, att)
        b = att.shape[1]
        fwd, rev, _, _, valid = link_probs(top[:b], top[b:], rows[0], rows[1], settings.temperature)
        return own_links(fwd, rev, valid)

    @jax.jit
    def evaluate(params, frozen, x0, att, rows, teacher, links):
        return loss_fn(params, frozen, x0, att, rows, None, teacher, links)

    @jax.jit
    def teacher(blocks, x0, att):
        """The base model's pooled, normalised embedding of both sides: `[2B, H]`."""
        a = att.reshape(-1, att.shape[-1])
        return pooled(E.forward(blocks, x0, a, cfg)[-1], a)

    return step, evaluate, links_of, teacher


def mean_sq_norm(cfg, emb, blocks, data, position_offset: int = 0) -> float:
    """The base model's mean squared row norm at the alignment layer over `data`."""
    total, count = 0.0, 0.0
    for length, group in data:
        ids, att, rows, _ = arrays(length, group)
        x0 = E.embed(emb, ids, cfg, position_offset)
        y = E.forward(blocks, jnp.asarray(x0), jnp.asarray(att.reshape(-1, length)), cfg)[-1]
        keep = rows.reshape(-1, length)
        total += float(((np.asarray(y) ** 2).sum(-1) * keep).sum())
        count += float(keep.sum())
    return total / count
