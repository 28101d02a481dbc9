"""Targets, exact per event (issue #2, section 2).

purchase_30m = 1 if the user has a buy with timestamp in (t, t + 1800 s].
churn_24h    = 1 if the user has no event at all in (t, t + 86400 s]; defined (mask = 1) only for
               t <= last timestamp in the data - 86400 s.
"""
from __future__ import annotations

import numpy as np

PURCHASE_WINDOW_MS = 1_800_000
CHURN_WINDOW_MS = 86_400_000


def user_groups(user: np.ndarray):
    """For events sorted by user: (group index per event, start index per event)."""
    n = len(user)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = user[1:] != user[:-1]
    gid = np.cumsum(new) - 1
    starts = np.nonzero(new)[0]
    return gid, starts[gid]


def composite_key(gid: np.ndarray, time_ms: np.ndarray, slack_ms: int):
    """A sortable int64 key (user group, time) such that key(g, t +- slack) stays comparable."""
    t0 = int(time_ms.min()) if len(time_ms) else 0
    span = (int(time_ms.max()) - t0 if len(time_ms) else 0) + 2 * slack_ms + 2
    if (int(gid.max()) + 1 if len(gid) else 1) * span >= 2 ** 62:
        raise ValueError("time span too large for composite key")

    def key(g, t):
        return g.astype(np.int64) * span + (t.astype(np.int64) - t0 + slack_ms + 1)
    return key


def compute_labels(user: np.ndarray, etype: np.ndarray, time_ms: np.ndarray, buy_id: int,
                   data_end_ms: int = None):
    """Events must be sorted by (user, time). Returns purchase (float32), churn (float32), churn_mask (float32)."""
    n = len(time_ms)
    gid, _ = user_groups(user)
    key = composite_key(gid, time_ms, CHURN_WINDOW_MS)
    k = key(gid, time_ms)
    is_buy = etype == buy_id
    kb = k[is_buy]  # sorted, since k is sorted
    lo = np.searchsorted(kb, k, side="right")
    hi = np.searchsorted(kb, key(gid, time_ms + PURCHASE_WINDOW_MS), side="right")
    purchase = (hi > lo).astype(np.float32)
    # any event of the user in (t, t+24h]
    lo = np.searchsorted(k, k, side="right")
    hi = np.searchsorted(k, key(gid, time_ms + CHURN_WINDOW_MS), side="right")
    churn = (hi == lo).astype(np.float32)
    if data_end_ms is None:
        data_end_ms = int(time_ms.max()) if n else 0
    mask = (time_ms <= data_end_ms - CHURN_WINDOW_MS).astype(np.float32)
    return purchase, churn, mask
