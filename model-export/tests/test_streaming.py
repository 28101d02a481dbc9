"""The streaming model (format 3): lifetime features against a loop-by-loop reading of docs/feature-contract.md
("Streaming model"), the reset rule, the attention read-out against the windowed encoder layer, and step parity:
step() event by event with the state fed back equals the parallel training forward over whole user sequences."""
import math
import random

import numpy as np
import pytest
import torch

from conftest import events_from, requires_data, taobao_sample
from seqscore_export import data as D
from seqscore_export import features as F
from seqscore_export import lifetime as LT
from seqscore_export import streaming as S
from seqscore_export.model import build

DAY = 86_400_000


def naive_lifetime(events, vocab, off, R):
    """events: canonical dicts of ONE user in window order. The record is the list of applied events."""
    rec = []
    out = []
    for e in events:
        t = e["event_time"]
        reset = not rec
        if rec and t - rec[-1]["event_time"] > R:
            rec = []
            reset = True
        f = [math.log1p(sum(1 for x in rec if x["event_type"] == ty) + (1 if e["event_type"] == ty else 0))
             for ty in vocab]
        f.append(math.log1p(len({(x["event_time"] + off) // DAY for x in rec + [e]})))
        f.append(math.log1p((t - rec[0]["event_time"]) / DAY) if rec else 0.0)
        f.append(math.log1p((min(t - rec[-1]["event_time"], R) if rec else R) / 1000))
        buys = [x for x in rec if x["event_type"] == "buy"]
        f.append(math.log1p((min(t - buys[-1]["event_time"], R) if buys else R) / 1000))
        f.append(1.0 if buys else 0.0)
        out.append((f, reset))
        rec.append(e)
    return out


def random_events(seed, users=6):
    rnd = random.Random(seed)
    recs = []
    types = ["view", "view", "view", "cart", "fav", "buy", "remove_from_cart"]
    for u in range(users):
        t = 1_511_600_000_000 + rnd.randint(0, 10**8)
        for _ in range(rnd.randint(1, 70)):
            # ties, day boundaries, gaps just at and beyond the reset gap, the horizon
            t += rnd.choice([0, 0, 1000, 60_000, 3_600_000, DAY, DAY - 1, 5 * DAY, LT.RESET_GAP_MS,
                             LT.RESET_GAP_MS + 1, 40 * DAY])
            recs.append({"user_id": f"u{u}", "event_type": rnd.choice(types), "item_id": f"i{rnd.randint(1, 6)}",
                         "category_id": rnd.choice(["", "c1", "c2"]), "event_time": t, "price": None,
                         "session_id": None})
    rnd.shuffle(recs)
    return recs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lifetime_features_match_naive_contract(tmp_path, seed):
    ev = events_from(tmp_path, random_events(seed))
    vocab = D.DEFAULT_VOCABULARY
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, vocab, 28_800_000)
    assert raw.shape[1] == len(LT.lifetime_feature_names(vocab)) == 10
    by_user = {}
    for i in range(len(ev)):
        by_user.setdefault(ev.user[i], []).append(i)
    resets = 0
    for u, idxs in by_user.items():
        want = naive_lifetime([ev.canonical(i) for i in idxs], vocab, 28_800_000, LT.RESET_GAP_MS)
        for i, (f, reset) in zip(idxs, want):
            np.testing.assert_allclose(raw[i], f, rtol=0, atol=1e-12)
            assert start[i] == reset
            resets += reset and i != idxs[0]
    assert resets > 0  # the reset rule was exercised


def test_empty_record_and_reset_values():
    vocab = D.DEFAULT_VOCABULARY
    R = LT.RESET_GAP_MS
    t0 = 1_511_600_000_000
    user = np.array(["a", "a", "a", "b"], dtype=object)
    t = np.array([t0, t0 + 1000, t0 + 1000 + R + 1, t0], dtype=np.int64)
    et = np.array([4, 1, 2, 1])  # buy, view, cart (after a reset), view (new user)
    raw, start = LT.lifetime_raw(user, t, et, vocab, 0)
    empty_buy = [0, 0, 0, math.log1p(1), 0, math.log1p(1), 0.0, math.log1p(R / 1000), math.log1p(R / 1000), 0.0]
    np.testing.assert_allclose(raw[0], empty_buy)
    second = [math.log1p(1), 0, 0, math.log1p(1), 0, math.log1p(1), math.log1p(1000 / DAY), math.log1p(1.0),
              math.log1p(1.0), 1.0]
    np.testing.assert_allclose(raw[1], second)
    np.testing.assert_allclose(raw[2], [0, math.log1p(1), 0, 0, 0, math.log1p(1), 0.0, math.log1p(R / 1000),
                                        math.log1p(R / 1000), 0.0])
    assert start.tolist() == [True, False, True, True]
    # exactly R of silence is not a reset
    raw2, start2 = LT.lifetime_raw(user[:2], np.array([t0, t0 + R]), et[:2], vocab, 0)
    assert start2.tolist() == [True, False] and raw2[1, 9] == 1.0


def random_model(seed=0, n_profile=27, cfg=None):
    torch.manual_seed(seed)
    m = S.build_streaming(F.default_constants(), n_profile, 10, cfg or {})
    for p in m.parameters():  # the head starts at zero: randomise everything so that every part matters
        torch.nn.init.normal_(p, std=0.3)
    with torch.no_grad():
        m.calib_a.copy_(torch.tensor([0.9, 1.1]))
        m.calib_b.copy_(torch.tensor([-0.2, 0.1]))
    m.eval()
    return m


def test_readout_is_the_windowed_encoder_layer_at_the_newest_position():
    from test_model import random_tensors
    T = random_tensors(64)
    m = random_model()
    fu = build("fusion", F.default_constants(), 27, {})
    fu.embed.load_state_dict(m.embed.state_dict())
    fu.transformer.load_state_dict(m.transformer.state_dict())
    fu.eval()
    with torch.no_grad():
        args = [torch.from_numpy(T[n]) for n in S.SEQ5]
        x = m.embed(*args)
        np.testing.assert_allclose(m.readout(x, args[4]).numpy(), fu.transformer.tokens(x, args[4])[:, -1].numpy(),
                                   rtol=0, atol=1e-5)
        # dropping the common left padding changes nothing
        short = np.argsort(T["mask"].sum(1))[:16]
        w = S.windows(T, short)
        assert w[0].shape[1] < 50
        np.testing.assert_allclose(m.readout(m.embed(*w), w[4]).numpy(), m.readout(x[short], args[4][short]).numpy(),
                                   rtol=0, atol=1e-5)


def _parity(m, T, life, users, start):
    n = len(users)
    segs = S.segments(users, start, np.arange(n))
    z = S.predict_logits(m, T, life, segs, n, events_per_batch=37, win_batch=13)
    zs = np.concatenate([S.run_steps(m, T, life, s)[1] for s in segs])
    np.testing.assert_allclose(z, zs, rtol=0, atol=1e-5)
    # scores too (what step.onnx returns)
    p = 1 / (1 + np.exp(-(z * m.calib_a.numpy() + m.calib_b.numpy())))
    ps = np.concatenate([S.run_steps(m, T, life, s)[0] for s in segs])
    np.testing.assert_allclose(p, ps, rtol=0, atol=1e-5)
    return segs


def test_step_parity_synthetic(tmp_path):
    """Synthetic users (with resets) through the real encoder: step() with the state fed back == the parallel
    forward; also for the no-memory ablation."""
    ev = events_from(tmp_path, random_events(7, users=5))
    c = F.default_constants()
    enc = F.Encoder(ev, c)
    T = F.encode_all(enc, None, *F.compute_stats(enc.encode_raw(np.arange(len(ev))), np.arange(len(ev)),
                                                  enc.profile_names))
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, c["event_types"]["vocabulary"], 28_800_000)
    life = LT.standardise(raw, LT.compute_stats(raw, np.arange(len(ev)), LT.lifetime_feature_names(D.DEFAULT_VOCABULARY)))
    segs = _parity(random_model(), T, life, ev.user, start)
    assert len(segs) > len(set(ev.user))  # resets cut some users
    _parity(random_model(cfg={"use_state": False, "use_lifetime": False}), T, life, ev.user, start)


@requires_data
def test_step_parity_real_users():
    ev, _ = D.load(taobao_sample(), "taobao")
    users = np.unique(ev.user.astype(str))
    keep = np.isin(ev.user.astype(str), users[[0, 5, 11, 40]])
    ev = ev.take(np.nonzero(keep)[0])
    assert len(ev) > 200
    c = F.default_constants()
    enc = F.Encoder(ev, c)
    rows = np.arange(len(ev))
    T = F.encode_all(enc, None, *F.compute_stats(enc.encode_raw(rows), rows, enc.profile_names))
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, c["event_types"]["vocabulary"], 28_800_000)
    life = LT.standardise(raw, LT.compute_stats(raw, rows, LT.lifetime_feature_names(D.DEFAULT_VOCABULARY)))
    _parity(random_model(1), T, life, ev.user, start)


def test_restart_points_and_segments():
    users = np.array(["a"] * 5 + ["b"] * 3, dtype=object)
    start = np.array([1, 0, 0, 1, 0, 1, 0, 0], dtype=bool)
    segs = S.segments(users, start, np.arange(8))
    assert [s.tolist() for s in segs] == [[0, 1, 2], [3, 4], [5, 6, 7]]
    segs = S.segments(users, start, np.array([0, 1, 2, 5, 6]))
    assert [s.tolist() for s in segs] == [[0, 1, 2], [5, 6]]


def test_training_step_runs_and_changes_the_model(tmp_path):
    ev = events_from(tmp_path, random_events(3, users=8))
    c = F.default_constants()
    enc = F.Encoder(ev, c)
    rows = np.arange(len(ev))
    T = F.encode_all(enc, None, *F.compute_stats(enc.encode_raw(rows), rows, enc.profile_names))
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, c["event_types"]["vocabulary"], 28_800_000)
    life = LT.standardise(raw, LT.compute_stats(raw, rows, LT.lifetime_feature_names(D.DEFAULT_VOCABULARY)))
    rng = np.random.default_rng(0)
    y = (rng.random((len(ev), 2)) < 0.3).astype(np.float32)
    w = np.ones_like(y)
    seen = []
    so = S.StreamOptions(epochs=2, users_per_batch=3, restart_fraction=1.0)
    m, hist, _ = S.fit_streaming(c, T["profile"].shape[1], 10, {}, T, life, start, y, w, ev.user, rows, so, 5,
                                 on_epoch=lambda e, model: seen.append(e))
    assert seen == [0, 1, 2] and len(hist) == 2
    assert float(m.head[-1].weight.abs().sum()) > 0
