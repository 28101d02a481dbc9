"""A naive, loop-by-loop implementation written straight from docs/feature-contract.md, compared with the
vectorised encoder on random synthetic timelines (ties, horizon boundaries, long users) and on real windows.
This is how the Java side will read the contract, so disagreements here would be parity bugs there."""
import math
import random

import numpy as np
import pytest

from conftest import events_from, requires_data, taobao_sample
from seqscore_export import data as D
from seqscore_export import features as F


def naive_window(events, e_idx, c):
    """events: list of dicts of ONE user in (event_time, arrival) order; returns raw features for event e_idx."""
    N, H, G = c["window"]["max_events"], c["window"]["horizon_ms"], c["window"]["session_gap_ms"]
    off = c["time"]["utc_offset_ms"]
    vocab = c["event_types"]["vocabulary"]
    e = events[e_idx]
    te = e["event_time"]
    win = [x for x in events[: e_idx + 1] if te - x["event_time"] < H][-N:]
    L = len(win)
    et = [0] * N
    ib = [0] * N
    cb = [0] * N
    seq = [[0.0] * 6 for _ in range(N)]
    for i, x in enumerate(win):
        p = N - L + i
        et[p] = vocab.index(x["event_type"]) + 1
        ib[p] = F.bucket(x["item_id"], c["hash"]["item_buckets"])
        cb[p] = F.bucket(x["category_id"], c["hash"]["category_buckets"])
        gap = 0.0 if i == 0 else math.log1p((x["event_time"] - win[i - 1]["event_time"]) / 1000)
        s = ((x["event_time"] + off) % 86400000) / 1000
        seq[p] = [gap, math.log1p((te - x["event_time"]) / 1000), math.sin(2 * math.pi * s / 86400),
                  math.cos(2 * math.pi * s / 86400), 1.0 if x["item_id"] == e["item_id"] else 0.0,
                  1.0 if x["category_id"] == e["category_id"] else 0.0]
    prof = [math.log1p(sum(1 for x in win if x["event_type"] == t)) for t in vocab]
    prof.append(math.log1p(len({x["item_id"] for x in win})))
    prof.append(math.log1p(len({x["category_id"] for x in win})))
    cwb = 0
    for i, x in enumerate(win):
        if x["event_type"] == "cart" and not any(y["event_type"] == "buy" and y["item_id"] == x["item_id"]
                                                 for y in win[i + 1:]):
            cwb += 1
    prof.append(math.log1p(cwb))
    k = 1
    while k < L and win[L - k]["event_time"] - win[L - k - 1]["event_time"] <= G:
        k += 1
    prof.append(math.log1p(k))
    buys = [x for x in win[: L - 1] if x["event_type"] == "buy"]
    if buys:
        prof.append(math.log1p(min(te - buys[-1]["event_time"], H) / 1000))
        prof.append(1.0)
    else:
        prof.append(math.log1p(H / 1000))
        prof.append(0.0)
    prof.append(L / N)
    R = c["window"]["recent_ms"]
    prof += [math.log1p(sum(1 for x in win if x["event_type"] == t and te - x["event_time"] < R)) for t in vocab]
    prof += [1.0 if e["event_type"] == t else 0.0 for t in vocab]
    prof.append(math.log1p((min(te - win[-2]["event_time"], H) if L >= 2 else H) / 1000))
    prof.append(math.log1p(sum(1 for x in win[:-1] if x["item_id"] == e["item_id"])))
    prof.append(math.log1p(sum(1 for x in win[:-1] if x["category_id"] == e["category_id"])))
    s_e = ((te + off) % 86400000) / 1000
    prof += [math.sin(2 * math.pi * s_e / 86400), math.cos(2 * math.pi * s_e / 86400)]
    mask = [0.0] * (N - L) + [1.0] * L
    return et, ib, cb, seq, mask, prof


def compare(ev, c, rows):
    enc = F.Encoder(ev, c)
    raw = enc.encode_raw(np.asarray(rows))
    by_user = {}
    for i in range(len(ev)):
        by_user.setdefault(ev.user[i], []).append(i)
    for j, r in enumerate(rows):
        idxs = by_user[ev.user[r]]
        evs = [ev.canonical(i) for i in idxs]
        et, ib, cb, seq, mask, prof = naive_window(evs, idxs.index(r), c)
        assert raw["event_type"][j].tolist() == et
        assert raw["item_bucket"][j].tolist() == ib
        assert raw["category_bucket"][j].tolist() == cb
        assert raw["mask"][j].tolist() == mask
        np.testing.assert_allclose(raw["seq_raw"][j], np.array(seq), rtol=0, atol=1e-12)
        np.testing.assert_allclose(raw["profile_raw"][j], np.array(prof), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_timelines_match_naive_contract(tmp_path, seed):
    rnd = random.Random(seed)
    recs = []
    types = ["view", "view", "view", "cart", "fav", "buy", "remove_from_cart"]
    for u in range(6):
        t = 1_511_600_000_000 + rnd.randint(0, 10**6)
        for _ in range(rnd.randint(1, 90)):
            # ties, sub-session gaps, gaps just at the session and horizon boundaries, long gaps
            t += rnd.choice([0, 0, 1000, 60_000, 1_800_000, 1_800_001, 86_400_000, 86_399_999, 3_600_000])
            recs.append({"user_id": f"u{u}", "event_type": rnd.choice(types), "item_id": f"i{rnd.randint(1, 6)}",
                         "category_id": rnd.choice(["", "c1", "c2", "ü"]), "event_time": t, "price": None,
                         "session_id": None})
    rnd.shuffle(recs)  # arrival order differs from time order
    ev = events_from(tmp_path, recs)
    for N in (4, 50):
        compare(ev, F.default_constants(max_events=N), list(range(len(ev))))


@requires_data
def test_real_windows_match_naive_contract():
    ev, _ = D.load(taobao_sample(), "taobao")
    keep = np.isin(ev.user.astype(str), np.unique(ev.user.astype(str))[:25])
    ev = ev.take(np.nonzero(keep)[0])
    rows = sorted(np.random.default_rng(0).choice(len(ev), 300, replace=False).tolist())
    compare(ev, F.default_constants(), rows)
