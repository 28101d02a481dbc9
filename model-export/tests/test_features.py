import math

import numpy as np
import pytest

from conftest import BASE_MS, ev, events_from
from seqscore_export import features as F


def enc_last(tmp_path, records, N=4, **kw):
    e = events_from(tmp_path, records)
    c = F.default_constants(max_events=N, **kw)
    enc = F.Encoder(e, c)
    raw = enc.encode_raw(np.array([len(e) - 1]))
    return {k: v[0] for k, v in raw.items()}, enc


def test_fnv_check_values():
    assert F.fnv1a64("") == 0xCBF29CE484222325
    assert F.fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert F.bucket("a", 4096) == (0xAF63DC4C8601EC8C % 4096) + 1 == 3213
    assert F.bucket("", 1024) == (0xCBF29CE484222325 % 1024) + 1
    # unsigned: a value with the top bit set stays positive
    assert F.fnv1a64("a") > 2 ** 63
    # UTF-8 bytes, not code points
    h = 0xCBF29CE484222325
    for b in "é".encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) % 2 ** 64
    assert F.fnv1a64("é") == h


def test_padding_and_values(tmp_path):
    recs = [ev("u", "view", "A", 0, "X"), ev("u", "cart", "B", 10, "X"), ev("u", "buy", "B", 70, "Y")]
    r, enc = enc_last(tmp_path, recs, N=4)
    assert r["L"] == 3
    assert r["event_type"].tolist() == [0, 1, 2, 4]
    assert r["mask"].tolist() == [0, 1, 1, 1]
    assert r["item_bucket"].tolist() == [0, F.bucket("A", 4096), F.bucket("B", 4096), F.bucket("B", 4096)]
    assert r["category_bucket"].tolist() == [0, F.bucket("X", 1024), F.bucket("X", 1024), F.bucket("Y", 1024)]
    s = r["seq_raw"]
    assert np.allclose(s[:, 0], [0, 0, math.log1p(10), math.log1p(60)])
    assert np.allclose(s[:, 1], [0, math.log1p(70), math.log1p(60), 0])
    assert s[:, 4].tolist() == [0, 0, 1, 1]
    assert s[:, 5].tolist() == [0, 0, 0, 1]
    assert np.all(s[0] == 0)  # padding row
    p = dict(zip(F.profile_feature_names(enc.vocab), r["profile_raw"]))
    assert p["count_view"] == pytest.approx(math.log1p(1))
    assert p["count_cart"] == pytest.approx(math.log1p(1))
    assert p["count_fav"] == 0 and p["count_remove_from_cart"] == 0
    assert p["count_buy"] == pytest.approx(math.log1p(1))
    assert p["distinct_items"] == pytest.approx(math.log1p(2))
    assert p["distinct_categories"] == pytest.approx(math.log1p(2))
    assert p["carts_without_buy"] == 0
    assert p["session_events"] == pytest.approx(math.log1p(3))
    assert p["since_prev_buy"] == pytest.approx(math.log1p(86400))  # e itself is the only buy
    assert p["has_prev_buy"] == 0
    assert p["window_length"] == pytest.approx(3 / 4)


def test_hour_of_day_uses_fixed_offset(tmp_path):
    r, _ = enc_last(tmp_path, [ev("u", "view", "A", 0)], N=2)
    s = 28800.0  # 00:00 UTC = 08:00 China time
    assert r["seq_raw"][1, 2] == pytest.approx(math.sin(2 * math.pi * s / 86400))
    assert r["seq_raw"][1, 3] == pytest.approx(math.cos(2 * math.pi * s / 86400))
    r, _ = enc_last(tmp_path, [ev("u", "view", "A", 100)], N=2, utc_offset_ms=-3600_000, zone="-01:00")
    s = (100 - 3600) % 86400
    assert r["seq_raw"][1, 2] == pytest.approx(math.sin(2 * math.pi * s / 86400))


def test_horizon_cut_is_strict(tmp_path):
    H = 86400
    recs = [ev("u", "view", "A", 0), ev("u", "view", "B", 100), ev("u", "view", "C", 5000), ev("u", "buy", "D", 100 + H)]
    r, enc = enc_last(tmp_path, recs, N=4)
    # t_e - t_0 > H cut, t_e - t_1 == H cut (strict <), t_2 kept
    assert r["L"] == 2
    assert r["event_type"].tolist() == [0, 0, 1, 4]
    assert r["seq_raw"][2, 0] == 0.0  # gap of the oldest kept event is 0, not the gap to a cut event
    start, L = enc.window_bounds(np.array([3]))
    assert start[0] == 2 and L[0] == 2


def test_count_cut_and_users_do_not_mix(tmp_path):
    recs = [ev("a", "view", "X", 1)] + [ev("u", "view", f"I{i}", 10 + i) for i in range(6)] + [ev("z", "cart", "X", 12)]
    e = events_from(tmp_path, recs)
    enc = F.Encoder(e, F.default_constants(max_events=4))
    raw = enc.encode_raw(np.arange(len(e)))
    assert raw["L"].tolist() == [1, 1, 2, 3, 4, 4, 4, 1]
    assert raw["event_type"][0].tolist() == [0, 0, 0, 1]
    assert raw["event_type"][7].tolist() == [0, 0, 0, 2]
    # row 6 = user u's 6th event: window = its events 2..5
    assert raw["item_bucket"][6].tolist() == [F.bucket(f"I{i}", 4096) for i in range(2, 6)]
    assert raw["profile_raw"][6][enc.profile_names.index("window_length")] == 1.0


def test_ties_keep_arrival_order(tmp_path):
    recs = [ev("u", "cart", "A", 5), ev("u", "view", "B", 5), ev("u", "buy", "A", 5)]
    e = events_from(tmp_path, recs)
    assert [int(x) for x in e.etype] == [2, 1, 4]
    enc = F.Encoder(e, F.default_constants(max_events=3))
    raw = enc.encode_raw(np.array([1]))
    assert raw["event_type"][0].tolist() == [0, 2, 1]  # the buy arrived after e, so it is not in e's window


def test_session_since_buy_carts(tmp_path):
    recs = [ev("u", "cart", "A", 0), ev("u", "cart", "B", 100), ev("u", "buy", "A", 2200), ev("u", "buy", "C", 2210),
            ev("u", "cart", "C", 2300), ev("u", "view", "A", 2400)]
    r, enc = enc_last(tmp_path, recs, N=8)
    p = dict(zip(F.profile_feature_names(enc.vocab), r["profile_raw"]))
    # gaps: 100, 2100 (> 1800: break), 10, 90, 100 -> last 4 events form the session
    assert p["session_events"] == pytest.approx(math.log1p(4))
    # cart A has a later buy A; cart B none; cart C's buy C came before it -> 2
    assert p["carts_without_buy"] == pytest.approx(math.log1p(2))
    assert p["since_prev_buy"] == pytest.approx(math.log1p(2400 - 2210))
    assert p["has_prev_buy"] == 1
    assert p["distinct_items"] == pytest.approx(math.log1p(3))
    assert p["distinct_categories"] == pytest.approx(math.log1p(1))


def test_standardise_zeroes_padding(tmp_path):
    recs = [ev("u", "view", "A", 0), ev("u", "view", "A", 10)]
    e = events_from(tmp_path, recs)
    enc = F.Encoder(e, F.default_constants(max_events=3))
    seq = [{"name": n, "mean": 0.5, "std": 2.0} for n in F.SEQUENCE_FEATURES]
    prof = [{"name": n, "mean": 1.0, "std": 4.0} for n in F.profile_feature_names(enc.vocab)]
    t = F.encode_all(enc, None, seq, prof)
    assert t["seq_numeric"].dtype == np.float32 and t["profile"].dtype == np.float32
    assert t["event_type"].dtype == np.int64
    assert np.all(t["seq_numeric"][1, 0] == 0)
    assert t["seq_numeric"][1, 2, 4] == np.float32((1 - 0.5) / 2.0)  # same_item of e with itself
    raw = enc.encode_raw(np.array([1]))
    assert np.array_equal(t["profile"][1], ((raw["profile_raw"][0] - 1.0) / 4.0).astype(np.float32))


def test_format_two_profile_features_match_the_java_hand_made_window(tmp_path):
    """The same window as flink-job's FeatureEncoderTest.formatTwoProfileFeaturesOfTheScoredEvent."""
    midnight_cn = 1_511_539_200
    recs = [ev("u", "view", "i1", 0, "c1"), ev("u", "cart", "i2", 300, "c1"), ev("u", "view", "i1", 1200, "c2"),
            ev("u", "cart", "i1", 1500, "c1")]
    for r in recs:  # absolute times from the Java test: 2017-11-25 00:00 China time + offsets
        r["event_time"] = r["event_time"] - BASE_MS + midnight_cn * 1000
    e = events_from(tmp_path, recs)
    c = F.default_constants(max_events=5, horizon_ms=3_600_000, session_gap_ms=600_000, recent_ms=600_000)
    enc = F.Encoder(e, c)
    p = dict(zip(enc.profile_names, enc.encode_raw(np.array([3]))["profile_raw"][0]))
    assert len(enc.profile_names) == 27 and enc.profile_names[:12] == F.profile_feature_names(enc.vocab, 1)
    assert [p[f"recent_{t}"] for t in enc.vocab] == pytest.approx([math.log1p(1), math.log1p(1), 0, 0, 0])
    assert [p[f"is_{t}"] for t in enc.vocab] == [0, 1, 0, 0, 0]
    angle = 2 * math.pi * 1500 / 86400
    assert [p["since_prev_event"], p["same_item_count"], p["same_category_count"], p["event_hour_sin"],
            p["event_hour_cos"]] == pytest.approx([math.log1p(300), math.log1p(2), math.log1p(2), math.sin(angle),
                                                   math.cos(angle)])


def test_lone_event_has_a_full_horizon_since_the_previous_one(tmp_path):
    r, enc = enc_last(tmp_path, [ev("u", "buy", "i9", 0)], N=5, horizon_ms=3_600_000)
    p = dict(zip(enc.profile_names, r["profile_raw"]))
    assert p["since_prev_event"] == pytest.approx(math.log1p(3600))
    assert p["same_item_count"] == 0 and p["same_category_count"] == 0
    assert p["recent_buy"] == pytest.approx(math.log1p(1)) and p["is_buy"] == 1


def test_spec_selects_profile_features_by_name(tmp_path):
    e = events_from(tmp_path, [ev("u", "view", "A", 0), ev("u", "cart", "A", 10)])
    spec = F.default_constants(max_events=3)
    names = ["is_cart", "count_view", "recent_view"]
    spec["sequence_features"] = [{"name": n, "mean": 0.0, "std": 1.0} for n in F.SEQUENCE_FEATURES]
    spec["profile_features"] = [{"name": n, "mean": 0.0, "std": 1.0} for n in names]
    enc = F.spec_encoder(e, spec)
    raw = enc.encode_raw(np.array([1]))["profile_raw"][0]
    assert raw.tolist() == pytest.approx([1.0, math.log1p(1), math.log1p(1)])
    spec["profile_features"].append({"name": "is_click", "mean": 0.0, "std": 1.0})
    with pytest.raises(ValueError, match="is_click"):
        F.spec_encoder(e, spec)
    spec["profile_features"] = spec["profile_features"][:3]
    del spec["window"]["recent_ms"]
    with pytest.raises(ValueError, match="recent_ms"):
        F.spec_encoder(e, spec)


def test_a_feature_constant_in_training_gets_std_one_not_the_floor():
    """Taobao has no remove_from_cart: with a 1e-6 floor, one such REES46 event became a 10^6 input at serving."""
    import numpy as np
    rng = np.random.default_rng(0)
    raw = {"seq_raw": rng.normal(size=(20, 3, len(F.SEQUENCE_FEATURES))), "mask": np.ones((20, 3)),
           "profile_raw": np.stack([rng.normal(size=20), np.zeros(20), np.full(20, 2.0)], 1)}
    seq, prof = F.compute_stats(raw, np.arange(20), ["a", "never_seen", "always_two"])
    assert [p["std"] for p in prof][1:] == [1.0, 1.0]
    assert prof[0]["std"] == pytest.approx(raw["profile_raw"][:, 0].std())
    assert prof[2]["mean"] == 2.0
    assert all(s["std"] != 1.0 for s in seq)
