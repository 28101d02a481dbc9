"""Window feature encoding, exactly as docs/feature-contract.md (mirrored in model-export/README.md).

Everything is vectorised with numpy over all events of a cleaned, sorted :class:`~.data.Events` table.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

from .labels import composite_key, user_groups

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1

SEQUENCE_FEATURES = ["gap_log1p", "age_log1p", "hour_sin", "hour_cos", "same_item", "same_category"]
INPUT_NAMES = ["event_type", "item_bucket", "category_bucket", "seq_numeric", "mask", "profile"]
OUTPUT_NAMES = ["purchase_30m", "churn_24h"]
STD_FLOOR = 1e-6
CHUNK = 8192


def fnv1a64(s: str) -> int:
    """64-bit FNV-1a over the UTF-8 bytes of s, as an unsigned int."""
    h = FNV_OFFSET
    for byte in s.encode("utf-8"):
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


def bucket(s: str, buckets: int) -> int:
    return fnv1a64(s) % buckets + 1


BASE_PROFILE_FEATURES = ["distinct_items", "distinct_categories", "carts_without_buy", "session_events",
                         "since_prev_buy", "has_prev_buy", "window_length"]
EVENT_PROFILE_FEATURES = ["since_prev_event", "same_item_count", "same_category_count", "event_hour_sin",
                          "event_hour_cos"]
# Profile features with one entry per vocabulary type, by name prefix.
TYPE_PREFIXES = ("count_", "recent_", "is_")


def profile_feature_names(vocabulary: List[str], version: int = 2) -> List[str]:
    """The profile features this encoder implements, in the order training writes them. Version 1 is the
    first bundle's list (12 features); version 2 adds the recent counts, the current event's type and the
    current-event features (docs/feature-contract.md)."""
    names = [f"count_{t}" for t in vocabulary] + BASE_PROFILE_FEATURES
    if version >= 2:
        names += [f"recent_{t}" for t in vocabulary] + [f"is_{t}" for t in vocabulary] + EVENT_PROFILE_FEATURES
    return names


def default_constants(max_events=50, horizon_ms=86_400_000, session_gap_ms=1_800_000, utc_offset_ms=28_800_000,
                      zone="+08:00", vocabulary=None, item_buckets=4096, category_buckets=1024,
                      recent_ms=1_800_000) -> dict:
    from .data import DEFAULT_VOCABULARY
    return {
        "window": {"max_events": int(max_events), "horizon_ms": int(horizon_ms), "session_gap_ms": int(session_gap_ms),
                   "recent_ms": int(recent_ms)},
        "time": {"zone": zone, "utc_offset_ms": int(utc_offset_ms)},
        "event_types": {"padding_id": 0, "vocabulary": list(vocabulary or DEFAULT_VOCABULARY)},
        "hash": {"name": "fnv1a64-utf8", "item_buckets": int(item_buckets), "category_buckets": int(category_buckets)},
    }


def _buckets_for(values: np.ndarray, buckets: int):
    """(bucket per value, integer code per value such that equal strings <=> equal codes)."""
    uniq, code = np.unique(values.astype(str), return_inverse=True)
    ub = np.fromiter((fnv1a64(u) % buckets + 1 for u in uniq), dtype=np.int64, count=len(uniq))
    return ub[code], code.astype(np.int64)


class Encoder:
    """Precomputes per-event columns of an Events table; encodes windows for any subset of its rows."""

    def __init__(self, ev, constants: dict, profile_names: Optional[List[str]] = None):
        self.ev = ev
        c = constants
        self.N = int(c["window"]["max_events"])
        self.H = int(c["window"]["horizon_ms"])
        self.G = int(c["window"]["session_gap_ms"])
        # Format 1 specs have no recent window; they name no recent_* feature either (check_spec_features).
        self.R = int(c["window"].get("recent_ms", 0))
        self.off = int(c["time"]["utc_offset_ms"])
        self.vocab = list(c["event_types"]["vocabulary"])
        if list(ev.vocabulary) != self.vocab:
            raise ValueError("events were read with a different vocabulary than the spec's")
        self.buy_id = self.vocab.index("buy") + 1 if "buy" in self.vocab else -1
        self.cart_id = self.vocab.index("cart") + 1 if "cart" in self.vocab else -1
        self.t = ev.time_ms.astype(np.int64)
        self.etype = ev.etype.astype(np.int64)
        self.item_b, self.item_code = _buckets_for(ev.item, int(c["hash"]["item_buckets"]))
        self.cat_b, self.cat_code = _buckets_for(ev.cat, int(c["hash"]["category_buckets"]))
        self.profile_names = list(profile_names or profile_feature_names(self.vocab))
        unknown = [n for n in self.profile_names if n not in set(profile_feature_names(self.vocab))]
        if unknown:
            raise ValueError(f"profile features {unknown} are not implemented")
        if any(n.startswith("recent_") for n in self.profile_names) and self.R <= 0:
            raise ValueError("recent_* profile features need window.recent_ms > 0")
        self.gid, self.ustart = user_groups(ev.user)
        key = composite_key(self.gid, self.t, self.H)
        self.k = key(self.gid, self.t)
        self._key = key

    def window_bounds(self, rows: np.ndarray):
        """start index and L for each row (window = events start..row in sorted order)."""
        hstart = np.searchsorted(self.k, self._key(self.gid[rows], self.t[rows] - self.H), side="right")
        start = np.maximum(np.maximum(hstart, self.ustart[rows]), rows - self.N + 1)
        return start, rows - start + 1

    def encode_raw(self, rows: np.ndarray) -> Dict[str, np.ndarray]:
        N = self.N
        rows = np.asarray(rows, dtype=np.int64)
        R = len(rows)
        start, L = self.window_bounds(rows)
        pos = np.arange(N)[None, :]
        first = (N - L)[:, None]
        valid = pos >= first
        src = np.where(valid, start[:, None] + (pos - first), rows[:, None])
        t = self.t[src]
        te = self.t[rows][:, None]
        et = np.where(valid, self.etype[src], 0)
        out = {
            "event_type": et,
            "item_bucket": np.where(valid, self.item_b[src], 0),
            "category_bucket": np.where(valid, self.cat_b[src], 0),
            "mask": valid.astype(np.float32),
            "L": L,
        }
        # sequence features
        tprev = np.concatenate([t[:, :1], t[:, :-1]], axis=1)
        gap_ms = np.where(pos > first, t - tprev, 0)
        seq = np.zeros((R, N, len(SEQUENCE_FEATURES)), dtype=np.float64)
        seq[..., 0] = np.log1p(gap_ms / 1000.0)
        seq[..., 1] = np.log1p((te - t) / 1000.0)
        s = np.mod(t + self.off, 86_400_000) / 1000.0
        ang = 2.0 * math.pi * s / 86400.0
        seq[..., 2] = np.sin(ang)
        seq[..., 3] = np.cos(ang)
        seq[..., 4] = (self.item_code[src] == self.item_code[rows][:, None])
        seq[..., 5] = (self.cat_code[src] == self.cat_code[rows][:, None])
        seq[~valid] = 0.0
        out["seq_raw"] = seq
        # profile features, by name; profile_names() gives the column order
        prof = {}
        for tid, tname in enumerate(self.vocab, start=1):
            prof[f"count_{tname}"] = np.log1p((et == tid).sum(1))
        for name, codes in (("distinct_items", self.item_code), ("distinct_categories", self.cat_code)):
            c = np.sort(np.where(valid, codes[src], -1), axis=1)
            distinct = ((c[:, 1:] != c[:, :-1]) & (c[:, 1:] >= 0)).sum(1) + (c[:, 0] >= 0)
            prof[name] = np.log1p(distinct)
        # carts without a later buy of the same item (later = higher window index)
        icode = np.where(valid, self.item_code[src], -1)
        is_cart = et == self.cart_id
        is_buy = et == self.buy_id
        later = np.triu(np.ones((N, N), dtype=bool), k=1)  # later[p, q] = q > p
        cwb = np.zeros(R, dtype=np.int64)
        for a in range(0, R, 2048):
            b = slice(a, a + 2048)
            same = icode[b][:, :, None] == icode[b][:, None, :]
            bought = (same & is_buy[b][:, None, :] & later[None]).any(2)
            cwb[b] = (is_cart[b] & ~bought).sum(1)
        prof["carts_without_buy"] = np.log1p(cwb)
        # session events: last k events with every consecutive gap <= G
        brk = (pos > first) & (gap_ms > self.G)
        last_brk = np.where(brk, pos, -1).max(1)
        k = np.where(last_brk >= 0, N - last_brk, L)
        prof["session_events"] = np.log1p(k)
        # time since the previous buy in the window (excluding e itself)
        pb = np.where(is_buy & (pos < N - 1), pos, -1).max(1)
        has = pb >= 0
        tb = t[np.arange(R), np.maximum(pb, 0)]
        since = np.where(has, np.minimum(self.t[rows] - tb, self.H), self.H)
        prof["since_prev_buy"] = np.log1p(since / 1000.0)
        prof["has_prev_buy"] = has.astype(np.float64)
        prof["window_length"] = L / float(N)
        # version 2: events of each type in the last recent_ms (e included), e's own type, e-centred features
        recent = valid & ((te - t) < self.R)
        etype_e = self.etype[rows]
        for tid, tname in enumerate(self.vocab, start=1):
            prof[f"recent_{tname}"] = np.log1p(((et == tid) & recent).sum(1))
            prof[f"is_{tname}"] = (etype_e == tid).astype(np.float64)
        tp = t[:, N - 2] if N >= 2 else t[:, 0]
        prof["since_prev_event"] = np.log1p(np.where(L >= 2, np.minimum(self.t[rows] - tp, self.H), self.H) / 1000.0)
        before = valid & (pos < N - 1)
        prof["same_item_count"] = np.log1p((before & (self.item_code[src] == self.item_code[rows][:, None])).sum(1))
        prof["same_category_count"] = np.log1p((before & (self.cat_code[src] == self.cat_code[rows][:, None])).sum(1))
        ang_e = 2.0 * math.pi * (np.mod(self.t[rows] + self.off, 86_400_000) / 1000.0) / 86400.0
        prof["event_hour_sin"] = np.sin(ang_e)
        prof["event_hour_cos"] = np.cos(ang_e)
        names = self.profile_names
        out["profile_raw"] = np.stack([prof[n] for n in names], axis=1).astype(np.float64)
        return out


def _std(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return np.where(sd < STD_FLOOR, 1.0, sd)


def compute_stats(raw: Dict[str, np.ndarray], rows_sel: np.ndarray, profile_names: List[str]):
    """Means and population stds of raw features on the selected rows (training split). A feature that is constant
    there (std below STD_FLOOR, e.g. count_remove_from_cart on Taobao, which has no such event) gets std 1: the model
    learns nothing from it, and serving data that does vary (REES46) must not blow up to (x - mean) / 1e-6."""
    seq = raw["seq_raw"][rows_sel]
    m = raw["mask"][rows_sel] > 0
    vals = seq[m]  # [real positions, S]
    smean = vals.mean(0)
    sstd = _std(vals)
    prof = raw["profile_raw"][rows_sel]
    pmean = prof.mean(0)
    pstd = _std(prof)
    seq_feats = [{"name": n, "mean": float(a), "std": float(b)} for n, a, b in zip(SEQUENCE_FEATURES, smean, sstd)]
    prof_feats = [{"name": n, "mean": float(a), "std": float(b)}
                  for n, a, b in zip(profile_names, pmean, pstd)]
    return seq_feats, prof_feats


def standardise(raw: Dict[str, np.ndarray], seq_feats: List[dict], prof_feats: List[dict]) -> Dict[str, np.ndarray]:
    if [f["name"] for f in seq_feats] != SEQUENCE_FEATURES:
        raise ValueError(f"unsupported sequence features: {[f['name'] for f in seq_feats]}")
    sm = np.array([f["mean"] for f in seq_feats], dtype=np.float64)
    ss = np.array([f["std"] for f in seq_feats], dtype=np.float64)
    pm = np.array([f["mean"] for f in prof_feats], dtype=np.float64)
    ps = np.array([f["std"] for f in prof_feats], dtype=np.float64)
    seq = ((raw["seq_raw"] - sm) / ss).astype(np.float32)
    seq[raw["mask"] == 0] = 0.0
    return {
        "event_type": raw["event_type"].astype(np.int64),
        "item_bucket": raw["item_bucket"].astype(np.int64),
        "category_bucket": raw["category_bucket"].astype(np.int64),
        "seq_numeric": seq,
        "mask": raw["mask"].astype(np.float32),
        "profile": ((raw["profile_raw"] - pm) / ps).astype(np.float32),
    }


def encode_all(encoder: Encoder, rows: Optional[np.ndarray], seq_feats, prof_feats) -> Dict[str, np.ndarray]:
    """Standardised tensors for rows (all rows if None), computed in chunks to bound memory."""
    if rows is None:
        rows = np.arange(len(encoder.ev))
    parts = []
    for a in range(0, len(rows), CHUNK):
        raw = encoder.encode_raw(rows[a:a + CHUNK])
        parts.append(standardise(raw, seq_feats, prof_feats))
    if not parts:
        raise ValueError("no rows to encode")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def check_spec_features(spec: dict) -> None:
    """Refuse a spec naming features this encoder does not implement (mirrors the Java rule): sequence features
    exactly as implemented; profile features any subset, each once, in any order."""
    seq = [f["name"] for f in spec["sequence_features"]]
    prof = [f["name"] for f in spec["profile_features"]]
    if seq != SEQUENCE_FEATURES:
        raise ValueError(f"spec sequence_features {seq} != implemented {SEQUENCE_FEATURES}")
    known = set(profile_feature_names(spec["event_types"]["vocabulary"]))
    unknown = [n for n in prof if n not in known]
    if unknown or len(set(prof)) != len(prof):
        raise ValueError(f"spec profile_features {prof}: not implemented {unknown} or repeated")
    if any(n.startswith("recent_") for n in prof) and int(spec["window"].get("recent_ms", 0)) <= 0:
        raise ValueError("spec names recent_* profile features but has no window.recent_ms")


def spec_encoder(ev, spec: dict) -> "Encoder":
    """An encoder producing exactly the spec's profile features, in its order."""
    check_spec_features(spec)
    return Encoder(ev, spec, [f["name"] for f in spec["profile_features"]])
