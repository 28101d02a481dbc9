"""--quick train + export into a temp dir, then check the bundle against its own spec.

The same checks run on the committed bundle models/default/ (those need no shared data)."""
import csv
import json
import os

import numpy as np
import pytest
import torch

from conftest import requires_data, taobao_sample
from seqscore_export import cli
from seqscore_export import data as D
from seqscore_export import export as X
from seqscore_export import features as F
from seqscore_export.train import predict

COMMITTED = os.path.join(D.repo_root(), "models", "default")
HAVE_DATA = os.path.exists(taobao_sample())


@pytest.fixture(scope="module", params=["quick", "committed"])
def bundle(request, tmp_path_factory):
    if request.param == "committed":
        if not os.path.exists(os.path.join(COMMITTED, "model-spec.json")):
            pytest.skip(f"no committed bundle at {COMMITTED}")
        return COMMITTED
    if not HAVE_DATA:
        pytest.skip(f"shared data not found at {taobao_sample()} (set SEQSCORE_DATA_DIR)")
    out = tmp_path_factory.mktemp("bundle")
    rc = cli.main(["train", "--quick", "--format", "taobao", "--input", taobao_sample(), "--out", str(out)])
    assert rc == 0
    return str(out)


def test_bundle_files(bundle):
    for name in X.BUNDLE_FILES + X.STREAMING_FILES:
        assert os.path.getsize(os.path.join(bundle, name)) > 0, name


def test_spec_layout_and_version(bundle):
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    assert spec["format_version"] == 3 and spec["opset"] == 17 and spec["onnx_file"] == "model.onnx"
    assert spec["window"] == {"max_events": 50, "horizon_ms": 86400000, "session_gap_ms": 1800000,
                              "recent_ms": 1800000}
    assert spec["time"] == {"zone": "+08:00", "utc_offset_ms": 28800000}
    assert spec["event_types"]["vocabulary"] == D.DEFAULT_VOCABULARY and spec["event_types"]["padding_id"] == 0
    assert spec["hash"] == {"name": "fnv1a64-utf8", "item_buckets": 4096, "category_buckets": 1024}
    F.check_spec_features(spec)
    for f in spec["sequence_features"] + spec["profile_features"]:
        assert f["std"] >= 1e-6
    assert [o["name"] for o in spec["outputs"]] == ["purchase_30m", "churn_24h"]
    assert [o["alert_type"] for o in spec["outputs"]] == ["HIGH_PURCHASE_INTENT", "CHURN_RISK"]
    assert [f["name"] for f in spec["profile_features"]] == F.profile_feature_names(D.DEFAULT_VOCABULARY)
    for o in spec["outputs"]:
        assert 0.0 <= o["threshold"] <= 1.0
        rule = o["threshold_rule"]
        assert rule["kind"] in ("alert_rate", "precision") and 0 < rule["target"] <= 1 and rule["used"]
        assert o["calibration"]["method"] == "platt"
        q = o["score_quantiles"]
        assert len(q["alert_rate"]) == len(q["threshold"]) >= 2
        assert all(a < b for a, b in zip(q["alert_rate"], q["alert_rate"][1:]))
        assert all(a >= b for a, b in zip(q["threshold"], q["threshold"][1:]))
        if rule["used"] == "alert_rate":  # the rule's threshold is the quantile at its rate
            assert o["threshold"] == pytest.approx(q["threshold"][q["alert_rate"].index(rule["target"])])
    assert spec["training_data"]["fingerprint"].startswith("sha256:")
    onnx_bytes = open(os.path.join(bundle, "model.onnx"), "rb").read()
    assert spec["model_version"] == X.model_version(onnx_bytes, spec)
    # format 3: both versions over the spec without either version; the streaming one over step.onnx
    st = spec["streaming"]
    step_bytes = open(os.path.join(bundle, st["onnx_file"]), "rb").read()
    assert st["model_version"] == X.model_version(step_bytes, spec) != spec["model_version"]
    bare = X.versioned_spec(spec)
    assert "model_version" not in bare and "model_version" not in bare["streaming"]
    assert spec["model_version"] == __import__("hashlib").sha256(onnx_bytes + json.dumps(
        bare, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()[:16]


def test_streaming_section(bundle):
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    st = spec["streaming"]
    assert st["onnx_file"] == "step.onnx" and st["golden_file"] == "golden-step.jsonl"
    assert st["reset_gap_ms"] == 2_592_000_000 and st["state_size"] == 32
    assert [f["name"] for f in st["lifetime_features"]] == [
        "life_count_view", "life_count_cart", "life_count_fav", "life_count_buy", "life_count_remove_from_cart",
        "life_active_days", "life_days_since_first", "life_since_prev_event", "life_since_prev_buy",
        "life_has_prev_buy"]
    assert all(f["std"] >= 1e-6 for f in st["lifetime_features"])
    Fn, Z = len(st["lifetime_features"]), st["state_size"]
    assert st["inputs"] == spec["inputs"] + [{"name": "lifetime", "dtype": "float32", "shape": ["batch", Fn]},
                                             {"name": "state", "dtype": "float32", "shape": ["batch", Z]}]
    assert st["graph_outputs"] == [{"name": "scores", "dtype": "float32", "shape": ["batch", 2]},
                                   {"name": "state_out", "dtype": "float32", "shape": ["batch", Z]}]
    assert [o["name"] for o in st["outputs"]] == ["purchase_30m", "churn_24h"]
    for o in st["outputs"]:
        assert o["dtype"] == "float32" and o["shape"] == ["batch"] and 0.0 <= o["threshold"] <= 1.0
        assert o["calibration"]["method"] == "platt" and o["threshold_rule"]["used"]
        q = o["score_quantiles"]
        assert all(a < b for a, b in zip(q["alert_rate"], q["alert_rate"][1:]))
        assert all(a >= b for a, b in zip(q["threshold"], q["threshold"][1:]))
    groups = st["reasons"]["groups"]
    assert [g["name"] for g in groups if g["history"]] == ["history"]
    assert [g["name"] for g in groups if g["sequence"]] == ["sequence"]
    assert sorted(p for g in groups for p in g["profile_features"]) == sorted(f["name"] for f in spec["profile_features"])
    import re
    names = [f["name"] for f in st["lifetime_features"]]
    hist = [g for g in groups if g["history"]][0]
    assert hist["lifetime_features"] == names
    assert all(ph in names for ph in re.findall(r"\{([a-z_0-9]+)\}", hist["text"]))


def test_step_onnx_matches_spec(bundle):
    import onnx
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    st = spec["streaming"]
    path = os.path.join(bundle, st["onnx_file"])
    m = onnx.load(path)
    onnx.checker.check_model(m)
    assert any(o.version == 17 for o in m.opset_import if o.domain in ("", "ai.onnx"))
    ins, outs = X.onnx_io(path)
    assert ins == [(i["name"], i["dtype"], i["shape"]) for i in st["inputs"]]
    assert outs == [(o["name"], o["dtype"], o["shape"]) for o in st["graph_outputs"]]


def test_golden_step_consistent_with_spec(bundle, tmp_path):
    """Lifetime features from the events by the contract's rules, and the torch model's scores (parallel forward)
    and final state (step by step), against golden-step.jsonl."""
    from seqscore_export import lifetime as LT
    from seqscore_export import streaming as S
    spec, sm = X.load_streaming(bundle)
    st = spec["streaming"]
    lines = [json.loads(x) for x in open(os.path.join(bundle, st["golden_file"]))]
    assert len(lines) >= 30
    N = spec["window"]["max_events"]
    assert sum(len(g["events"]) > N for g in lines) >= 5
    assert sum(any(b["event_time"] - a["event_time"] > spec["window"]["horizon_ms"]
                   for a, b in zip(g["events"], g["events"][1:])) for g in lines) >= 5
    p = tmp_path / "events.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for g in lines for e in g["events"]))
    ev, _ = D.load(str(p), "canonical", spec["event_types"]["vocabulary"])
    assert len(ev) == sum(len(g["events"]) for g in lines)
    enc = F.spec_encoder(ev, spec)
    T = F.encode_all(enc, None, spec["sequence_features"], spec["profile_features"])
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, spec["event_types"]["vocabulary"],
                                 spec["time"]["utc_offset_ms"], st["reset_gap_ms"])
    life = LT.standardise(raw, st["lifetime_features"])
    by_user = {g["user_id"]: g for g in lines}
    order = [str(u) for u in ev.user]
    want_life = np.concatenate([np.array(by_user[u]["lifetime"]) for u in dict.fromkeys(order)])
    want_scores = np.concatenate([np.array(by_user[u]["scores"]) for u in dict.fromkeys(order)])
    np.testing.assert_allclose(life, want_life, atol=1e-5)
    segs = S.segments(ev.user, start, np.arange(len(ev)))
    z = S.predict_logits(sm, T, life, segs, len(ev))
    pr = 1 / (1 + np.exp(-(z * sm.calib_a.numpy() + sm.calib_b.numpy())))
    np.testing.assert_allclose(pr, want_scores, atol=1e-5)
    for s in segs[:3]:
        if s[-1] + 1 == len(ev) or ev.user[s[-1] + 1] != ev.user[s[-1]]:
            _, _, state = S.run_steps(sm, T, life, s)
            np.testing.assert_allclose(state, by_user[str(ev.user[s[0]])]["state_final"], atol=1e-5)


def test_onnx_graph_matches_spec(bundle):
    import onnx
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    m = onnx.load(os.path.join(bundle, "model.onnx"))
    onnx.checker.check_model(m)
    assert any(o.version == 17 for o in m.opset_import if o.domain in ("", "ai.onnx"))
    ins, outs = X.onnx_io(os.path.join(bundle, "model.onnx"))
    assert ins == [(i["name"], i["dtype"], i["shape"]) for i in spec["inputs"]]
    assert outs == [(o["name"], o["dtype"], o["shape"]) for o in spec["outputs"]]
    N, S, P = 50, len(spec["sequence_features"]), len(spec["profile_features"])
    assert [i["shape"] for i in spec["inputs"]] == [["batch", N]] * 3 + [["batch", N, S], ["batch", N], ["batch", P]]


def test_golden_consistent_with_spec(bundle, tmp_path):
    spec, model = X.load_bundle(bundle)
    lines = [json.loads(x) for x in open(os.path.join(bundle, "golden.jsonl"))]
    assert len(lines) >= 200
    N = spec["window"]["max_events"]
    kinds = {"short": 0, "horizon": 0, "full": 0}
    feats = {k: [] for k in F.INPUT_NAMES}
    for k, g in enumerate(lines):
        h = g["history"]
        assert h and all(e["user_id"] == g["user_id"] for e in h) and len(h) <= 2 * N
        p = tmp_path / f"h{k}.jsonl"
        p.write_text("".join(json.dumps(e) + "\n" for e in h))
        ev, _ = D.load(str(p), "canonical", spec["event_types"]["vocabulary"])
        assert len(ev) == len(h)
        enc = F.Encoder(ev, spec)
        t = F.encode_all(enc, np.array([len(ev) - 1]), spec["sequence_features"], spec["profile_features"])
        for name in ("event_type", "item_bucket", "category_bucket"):
            assert t[name][0].tolist() == g["features"][name], name
        for name in ("seq_numeric", "mask", "profile"):
            np.testing.assert_allclose(t[name][0], np.array(g["features"][name], dtype=np.float32), atol=1e-5,
                                       err_msg=name)
        for name in F.INPUT_NAMES:
            feats[name].append(np.array(g["features"][name]))
        L = int(sum(g["features"]["mask"]))
        if L == N:
            kinds["full"] += 1
        elif len(h) > L:
            kinds["horizon"] += 1
        else:
            kinds["short"] += 1
    assert all(v > 0 for v in kinds.values()), kinds
    tensors = {k: np.stack(v).astype(np.int64 if k in ("event_type", "item_bucket", "category_bucket") else np.float32)
               for k, v in feats.items()}
    with torch.no_grad():
        p = predict(model, tensors)
    want = np.array([[g["outputs"]["purchase_30m"], g["outputs"]["churn_24h"]] for g in lines])
    np.testing.assert_allclose(p, want, atol=1e-5)


@requires_data
def test_score_and_evaluate(bundle, tmp_path, capsys):
    src = tmp_path / "small.csv"
    with open(taobao_sample()) as f:
        src.write_text("".join(f.readline() for _ in range(400)) + "garbage,row\n")
    out = tmp_path / "scores.csv"
    assert cli.main(["score", "--model", bundle, "--format", "taobao", "--input", str(src), "--output", str(out)]) == 0
    ev, rep = D.load(str(src), "taobao")
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["user_id", "timestamp", "event_type", "item_id", "purchase_30m", "churn_24h"]
    assert len(rows) - 1 == len(ev) and rep.counts["wrong_column_count"] == 1
    keys = [(r[0], int(r[1])) for r in rows[1:]]
    assert keys == sorted(keys)
    assert all(r[2] in D.DEFAULT_VOCABULARY for r in rows[1:])
    assert all(0.0 <= float(r[4]) <= 1.0 and 0.0 <= float(r[5]) <= 1.0 for r in rows[1:])
    assert cli.main(["evaluate", "--model", bundle, "--format", "taobao", "--input", str(src)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["metrics"]) == {"purchase_30m", "churn_24h"}
    assert set(res["metrics"]["purchase_30m"]) >= {"roc_auc", "pr_auc", "brier", "ece"}
    # format 3: incremental (the streaming model) by default, the windowed model on request; they differ
    assert res["scoring"] == "incremental"
    out_w = tmp_path / "scores_windowed.csv"
    assert cli.main(["score", "--model", bundle, "--format", "taobao", "--input", str(src), "--output", str(out_w),
                     "--scoring", "windowed"]) == 0
    rows_w = list(csv.reader(open(out_w)))
    assert [r[:4] for r in rows_w] == [r[:4] for r in rows] and rows_w[1:] != rows[1:]


def test_metrics_json_has_every_model(bundle):
    m = json.load(open(os.path.join(bundle, "metrics.json")))
    assert set(m["models"]) == {"fusion", "fusion_no_pretrain", "wide_profile", "lstm", "transformer", "profile_mlp",
                                "logistic", "heuristic"}
    assert m["served"] in ("fusion", "fusion_no_pretrain")
    for name, v in m["models"].items():
        for o in ("purchase_30m", "churn_24h"):
            for key in ("roc_auc", "pr_auc", "brier", "ece"):
                cell = v["cv"][o][key]
                assert set(cell) == {"mean", "sd", "folds"}, (name, o, key)
                assert len(cell["folds"]) == m["evaluation"]["folds"], (name, o, key)
    for o in ("purchase_30m", "churn_24h"):
        assert set(m["comparison_with_served"][o]) == set(m["models"]) - {m["served"]}
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    names = [g["name"] for g in spec["reasons"]["groups"]]
    assert set(m["importance"]["groups"]) == set(names) and m["importance"]["model"] == m["served"]
    for g in m["importance"]["groups"].values():
        for o in ("purchase_30m", "churn_24h"):
            assert -1.0 <= g[o]["mean"] <= 1.0
    st = m["streaming"]
    assert set(st["models"]) >= {"streaming", "streaming_no_memory", "logistic_lifetime", "gbt", "gbt_lifetime"}
    for name, v in st["models"].items():
        for o in ("purchase_30m", "churn_24h"):
            assert len(v["cv"][o]["roc_auc"]["folds"]) == m["evaluation"]["folds"], (name, o)
    for o in ("purchase_30m", "churn_24h"):
        assert {"fusion", "logistic", "logistic_lifetime", "gbt_lifetime"} <= set(st["comparison_with_streaming"][o])
    assert set(st["targets"]) == {"no_worse_than_windowed_fusion_by_0.005", "ahead_of_logistic_lifetime",
                                  "ahead_of_gbt_lifetime"}
    assert set(st["rebuilt"]["conditions"]) >= {"lifetime_state", "state_zeroed", "state_and_record_rebuilt"}
    assert st["golden_step"]["users"] >= 30


def test_reason_groups_partition_the_profile(bundle):
    spec = json.load(open(os.path.join(bundle, "model-spec.json")))
    r = spec["reasons"]
    assert r["top"] >= 1
    members = [p for g in r["groups"] for p in g["profile_features"]]
    assert sorted(members) == sorted(f["name"] for f in spec["profile_features"])
    assert [g["name"] for g in r["groups"] if g["sequence"]] == ["sequence"]


def test_exported_probabilities_are_calibrated_logits(bundle):
    """The graph applies the Platt scaling recorded in the spec: p = sigmoid(a * logit + b)."""
    spec, model = X.load_bundle(bundle)
    lines = [json.loads(x) for x in open(os.path.join(bundle, "golden.jsonl"))][:20]
    t = {k: np.stack([np.array(g["features"][k]) for g in lines]).astype(
        np.int64 if k in ("event_type", "item_bucket", "category_bucket") else np.float32) for k in F.INPUT_NAMES}
    from seqscore_export.train import predict_logits
    z = predict_logits(model, t)
    p = predict(model, t)
    for j, o in enumerate(spec["outputs"]):
        a, b = o["calibration"]["a"], o["calibration"]["b"]
        np.testing.assert_allclose(p[:, j], 1 / (1 + np.exp(-(a * z[:, j] + b))), rtol=1e-5, atol=1e-6)


@requires_data
def test_quick_train_on_rees46_survives_short_data(tmp_path):
    """REES46 head covers ~3 hours: no churn labels at all, few buys. Training must still produce a bundle."""
    src = os.path.join(D.default_data_dir(), "rees46", "2019-Oct_head.csv")
    if not os.path.exists(src):
        pytest.skip(f"{src} not found")
    out = tmp_path / "rees"
    assert cli.main(["train", "--quick", "--format", "rees46", "--input", src, "--out", str(out),
                     "--utc-offset-ms", "0", "--golden", "50"]) == 0
    spec = json.load(open(out / "model-spec.json"))
    assert spec["time"] == {"zone": "+00:00", "utc_offset_ms": 0}
    assert spec["outputs"][1]["calibration"] == {"method": "platt", "a": 1.0, "b": 0.0,
                                                 "fitted_on": "out-of-fold logits of the cross-validation"}
    assert sum(1 for _ in open(out / "golden.jsonl")) == 50


@requires_data
def test_export_round_trip_format3(bundle, tmp_path):
    """export rebuilds both graphs and the spec from model.pt: same bytes, same spec (both model versions)."""
    src = tmp_path / "small.csv"
    with open(taobao_sample()) as f:
        src.write_text("".join(f.readline() for _ in range(3000)))
    out = tmp_path / "re"
    assert cli.main(["export", "--model", bundle, "--out", str(out), "--format", "taobao", "--input", str(src),
                     "--golden", "30", "--golden-users", "5"]) == 0
    a = json.load(open(os.path.join(bundle, "model-spec.json")))
    b = json.load(open(out / "model-spec.json"))
    assert a == b
    for name in ("model.onnx", "step.onnx"):
        assert open(os.path.join(bundle, name), "rb").read() == open(out / name, "rb").read(), name
    assert sum(1 for _ in open(out / "golden-step.jsonl")) == 5
