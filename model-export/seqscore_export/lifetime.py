"""The per-user lifetime record and its lifetime features, exactly as docs/feature-contract.md ("Streaming model
(format_version 3)"): model-independent, kept by the job beside the window, reset after a gap longer than
``reset_gap_ms``. Features of event e are read from the record *before* e is applied (after the reset rule)."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from .features import STD_FLOOR

RESET_GAP_MS = 30 * 86_400_000  # 2592000000: a user silent this long starts again as a new user
DAY_MS = 86_400_000
BASE_LIFETIME_FEATURES = ["life_active_days", "life_days_since_first", "life_since_prev_event",
                          "life_since_prev_buy", "life_has_prev_buy"]


def lifetime_feature_names(vocabulary: Sequence[str]) -> List[str]:
    return [f"life_count_{t}" for t in vocabulary] + BASE_LIFETIME_FEATURES


class Record:
    """One user's lifetime record (what the job keeps), applied event by event."""

    def __init__(self, n_types: int, buy_id: int, utc_offset_ms: int, reset_gap_ms: int):
        self.n_types, self.buy_id, self.off, self.R = n_types, buy_id, utc_offset_ms, reset_gap_ms
        self.clear()

    def clear(self):
        self.counts = [0] * self.n_types
        self.t_first = self.t_last = self.t_buy = None
        self.days = 0
        self.last_day = None

    @property
    def empty(self) -> bool:
        return self.t_last is None

    def features(self, etype: int, t: int) -> tuple:
        """(raw features of an event of type id ``etype`` at ``t``, reset) -- applies the reset rule first (mutates)."""
        reset = self.empty
        if not self.empty and t - self.t_last > self.R:
            self.clear()
            reset = True
        day = (t + self.off) // DAY_MS
        out = [math.log1p(self.counts[k] + (1 if etype == k + 1 else 0)) for k in range(self.n_types)]
        out.append(math.log1p(self.days + (0 if (not self.empty and day == self.last_day) else 1)))
        out.append(0.0 if self.empty else math.log1p((t - self.t_first) / DAY_MS))
        out.append(math.log1p((self.R if self.empty else min(t - self.t_last, self.R)) / 1000.0))
        out.append(math.log1p((self.R if self.t_buy is None else min(t - self.t_buy, self.R)) / 1000.0))
        out.append(0.0 if self.t_buy is None else 1.0)
        return out, reset

    def apply(self, etype: int, t: int) -> None:
        day = (t + self.off) // DAY_MS
        if self.empty:
            self.t_first = t
        if self.empty or day != self.last_day:
            self.days += 1
        self.last_day = day
        self.t_last = t
        self.counts[etype - 1] += 1
        if etype == self.buy_id:
            self.t_buy = t


def lifetime_raw(user: np.ndarray, time_ms: np.ndarray, etype: np.ndarray, vocabulary: Sequence[str],
                 utc_offset_ms: int, reset_gap_ms: int = RESET_GAP_MS, record_start: Optional[np.ndarray] = None):
    """Raw lifetime features [n, F] (float64) and ``start`` [n] (True where the record was empty before the event:
    a user's first event or a reset; the recurrent state is zero there) for events sorted by (user, time, arrival).

    record_start: optional bool [n]; True empties the record before that event (without it being a reset by the
    rule), which the 'rebuilt' evaluation uses to start a record from only some of a user's events."""
    n = len(time_ms)
    vocab = list(vocabulary)
    buy = vocab.index("buy") + 1 if "buy" in vocab else -1
    out = np.zeros((n, len(vocab) + len(BASE_LIFETIME_FEATURES)), dtype=np.float64)
    start = np.zeros(n, dtype=bool)
    rec = Record(len(vocab), buy, int(utc_offset_ms), int(reset_gap_ms))
    t_list = time_ms.astype(np.int64).tolist()
    e_list = etype.astype(np.int64).tolist()
    u_list = user.tolist()
    prev = object()
    for i in range(n):
        if u_list[i] != prev or (record_start is not None and record_start[i]):
            rec.clear()
            prev = u_list[i]
        f, reset = rec.features(e_list[i], t_list[i])
        out[i] = f
        start[i] = reset
        rec.apply(e_list[i], t_list[i])
    return out, start


def compute_stats(raw: np.ndarray, rows: np.ndarray, names: List[str]) -> List[dict]:
    """Mean and population std on the training rows, std floored as for the window features."""
    x = raw[rows]
    mean = x.mean(0)
    sd = x.std(0)
    sd = np.where(sd < STD_FLOOR, 1.0, sd)
    return [{"name": n, "mean": float(a), "std": float(b)} for n, a, b in zip(names, mean, sd)]


def standardise(raw: np.ndarray, stats: List[dict]) -> np.ndarray:
    m = np.array([f["mean"] for f in stats], dtype=np.float64)
    s = np.array([f["std"] for f in stats], dtype=np.float64)
    return ((raw - m) / s).astype(np.float32)


def check_names(names: List[str], vocabulary: Sequence[str]) -> None:
    want = lifetime_feature_names(vocabulary)
    if list(names) != want:
        raise ValueError(f"streaming.lifetime_features {list(names)} != implemented {want}")


def for_events(ev, spec_or_constants: dict, reset_gap_ms: int = RESET_GAP_MS) -> Dict[str, np.ndarray]:
    raw, start = lifetime_raw(ev.user, ev.time_ms, ev.etype, spec_or_constants["event_types"]["vocabulary"],
                              spec_or_constants["time"]["utc_offset_ms"], reset_gap_ms)
    return {"raw": raw, "start": start}
