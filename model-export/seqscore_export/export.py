"""Export the model bundle: model.onnx, model-spec.json, golden.jsonl, metrics.json, MODEL_CARD.md (+ model.pt)."""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
from typing import Dict

import numpy as np
import torch

from . import features as F
from . import reasons as R

log = logging.getLogger("seqscore_export")

OPSET = 17
ALERT_TYPES = {"purchase_30m": "HIGH_PURCHASE_INTENT", "churn_24h": "CHURN_RISK"}
BUNDLE_FILES = ["model.onnx", "model-spec.json", "golden.jsonl", "metrics.json", "MODEL_CARD.md", "model.pt"]
STREAMING_FILES = ["step.onnx", "golden-step.jsonl"]


def canonical_json(obj) -> bytes:
    """The canonical JSON used for model_version: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def versioned_spec(spec: dict) -> dict:
    """The spec that both model versions hash: without the top-level ``model_version`` and (format 3) without
    ``streaming.model_version``."""
    s = {k: v for k, v in spec.items() if k != "model_version"}
    if isinstance(s.get("streaming"), dict):
        s["streaming"] = {k: v for k, v in s["streaming"].items() if k != "model_version"}
    return s


def model_version(onnx_bytes: bytes, spec: dict) -> str:
    """First 16 hex chars of sha256 over the graph's bytes + the canonical versioned spec: model.onnx gives the
    top-level model_version, step.onnx (format 3) ``streaming.model_version``."""
    return hashlib.sha256(onnx_bytes + canonical_json(versioned_spec(spec))).hexdigest()[:16]


def io_spec(N: int, S: int, P: int):
    inputs = [
        {"name": "event_type", "dtype": "int64", "shape": ["batch", N]},
        {"name": "item_bucket", "dtype": "int64", "shape": ["batch", N]},
        {"name": "category_bucket", "dtype": "int64", "shape": ["batch", N]},
        {"name": "seq_numeric", "dtype": "float32", "shape": ["batch", N, S]},
        {"name": "mask", "dtype": "float32", "shape": ["batch", N]},
        {"name": "profile", "dtype": "float32", "shape": ["batch", P]},
    ]
    return inputs


def export_onnx(model: torch.nn.Module, path: str, example: Dict[str, np.ndarray]) -> None:
    """torch.onnx.export, opset 17, named inputs/outputs, dynamic batch axis.

    Exported in eval mode but with grad enabled, so nn.TransformerEncoder stays off its fused fast path
    (aten::_transformer_encoder_layer_fwd is not exportable in torch 1.13)."""
    model.eval()
    args = tuple(torch.from_numpy(example[n]) for n in F.INPUT_NAMES)
    dyn = {n: {0: "batch"} for n in F.INPUT_NAMES + F.OUTPUT_NAMES}
    kwargs = dict(input_names=F.INPUT_NAMES, output_names=F.OUTPUT_NAMES, opset_version=OPSET,
                  dynamic_axes=dyn, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    import warnings
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings from torch internals (shape asserts), harmless here
        torch.onnx.export(model, args, path, **kwargs)
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)


def onnx_io(path: str):
    """[(name, elem_type_name, [dims])] for graph inputs and outputs."""
    import onnx
    m = onnx.load(path)
    names = {1: "float32", 7: "int64"}

    def dims(v):
        out = []
        for d in v.type.tensor_type.shape.dim:
            out.append(d.dim_param if d.dim_param else d.dim_value)
        return out
    init = {i.name for i in m.graph.initializer}
    ins = [(v.name, names.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)), dims(v))
           for v in m.graph.input if v.name not in init]
    outs = [(v.name, names.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)), dims(v))
            for v in m.graph.output]
    return ins, outs


def pick_golden_rows(encoder: F.Encoder, candidate_rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Real windows: a third with L < N (not horizon-cut), a third cut by the horizon, a third with L = N."""
    rows = np.asarray(candidate_rows, dtype=np.int64)
    start, L = encoder.window_bounds(rows)
    N = encoder.N
    hcut = (start > encoder.ustart[rows]) & (L < N)
    full = L == N
    short = ~hcut & ~full
    rng = np.random.default_rng(seed)
    chosen = []
    groups = [short, hcut, full]
    per = int(math.ceil(n / 3))
    for g in groups:
        idx = rows[g]
        k = min(per, len(idx))
        if k:
            chosen.append(rng.choice(idx, k, replace=False))
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    if len(chosen) < n:  # top up from the rest
        rest = np.setdiff1d(rows, chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, min(n - len(chosen), len(rest)), replace=False)])
    return np.sort(chosen)


def f32(x) -> float:
    """A float32 as the shortest decimal that parses back to the same float32 (keeps golden.jsonl small)."""
    return float(repr(np.float32(x)))


def write_golden(path: str, encoder: F.Encoder, rows: np.ndarray, tensors: Dict[str, np.ndarray],
                 outputs: np.ndarray) -> int:
    ev = encoder.ev
    N = encoder.N
    with open(path, "w", encoding="utf-8") as f:
        for j, r in enumerate(rows):
            r = int(r)
            h0 = max(int(encoder.ustart[r]), r - 2 * N + 1)
            rec = {
                "user_id": str(ev.user[r]),
                "history": [ev.canonical(i) for i in range(h0, r + 1)],
                "features": {
                    "event_type": tensors["event_type"][j].tolist(),
                    "item_bucket": tensors["item_bucket"][j].tolist(),
                    "category_bucket": tensors["category_bucket"][j].tolist(),
                    "seq_numeric": [[f32(x) for x in row] for row in tensors["seq_numeric"][j]],
                    "mask": [f32(x) for x in tensors["mask"][j]],
                    "profile": [f32(x) for x in tensors["profile"][j]],
                },
                "outputs": {"purchase_30m": f32(outputs[j, 0]), "churn_24h": f32(outputs[j, 1])},
            }
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return len(rows)


FORMAT_VERSION = 2
STREAMING_FORMAT_VERSION = 3


def build_spec(constants, seq_feats, prof_feats, outputs_extra: dict, training_data: dict) -> dict:
    """outputs_extra[name] = {"threshold": t, "threshold_rule": {...}, "calibration": {...},
    "score_quantiles": {...}}."""
    N = constants["window"]["max_events"]
    outputs = []
    for name in F.OUTPUT_NAMES:
        x = outputs_extra[name]
        o = {"name": name, "dtype": "float32", "shape": ["batch"], "alert_type": ALERT_TYPES[name],
             "threshold": float(x["threshold"]), "threshold_rule": x["threshold_rule"]}
        for key in ("calibration", "score_quantiles"):
            if key in x:
                o[key] = x[key]
        outputs.append(o)
    spec = {
        "format_version": FORMAT_VERSION,
        "model_version": "",
        "onnx_file": "model.onnx",
        "opset": OPSET,
        "window": dict(constants["window"]),
        "time": dict(constants["time"]),
        "event_types": dict(constants["event_types"]),
        "hash": dict(constants["hash"]),
        "sequence_features": seq_feats,
        "profile_features": prof_feats,
        "inputs": io_spec(N, len(seq_feats), len(prof_feats)),
        "outputs": outputs,
        "reasons": R.spec_section([f["name"] for f in prof_feats]),
        "training_data": training_data,
    }
    return spec


def save_checkpoint(path: str, model, arch: str) -> None:
    torch.save({"arch": arch, "config": model.cfg, "state_dict": model.state_dict()}, path)


def load_bundle(model_dir: str):
    """(spec, PyTorch model) from a bundle directory (needs model-spec.json and model.pt)."""
    from .model import build
    with open(os.path.join(model_dir, "model-spec.json"), encoding="utf-8") as f:
        spec = json.load(f)
    F.check_spec_features(spec)
    if spec.get("format_version") not in (1, FORMAT_VERSION, STREAMING_FORMAT_VERSION):
        raise ValueError(f"{model_dir}: model-spec.json format_version {spec.get('format_version')} is not 1, 2 or "
                         f"{STREAMING_FORMAT_VERSION}")
    ck = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
    model = build(ck["arch"], spec, len(spec["profile_features"]), ck["config"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return spec, model


def finalize_spec(out_dir: str, spec: dict) -> dict:
    with open(os.path.join(out_dir, "model.onnx"), "rb") as f:
        onnx_bytes = f.read()
    spec["model_version"] = model_version(onnx_bytes, spec)
    if "streaming" in spec:
        with open(os.path.join(out_dir, spec["streaming"]["onnx_file"]), "rb") as f:
            spec["streaming"]["model_version"] = model_version(f.read(), spec)
    with open(os.path.join(out_dir, "model-spec.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    return spec


# ---------------------------------------------------------------- format 3: the streaming model

def stream_io_spec(N: int, S: int, P: int, F_: int, Z: int):
    return io_spec(N, S, P) + [{"name": "lifetime", "dtype": "float32", "shape": ["batch", F_]},
                               {"name": "state", "dtype": "float32", "shape": ["batch", Z]}]


def streaming_section(life_feats, state_size: int, reset_gap_ms: int, outputs_extra: dict, N: int, S: int, P: int,
                      profile_names) -> dict:
    """The model-spec.json ``streaming`` section (format 3)."""
    outputs = []
    for name in F.OUTPUT_NAMES:
        x = outputs_extra[name]
        o = {"name": name, "dtype": "float32", "shape": ["batch"], "alert_type": ALERT_TYPES[name],
             "threshold": float(x["threshold"]), "threshold_rule": x["threshold_rule"]}
        for key in ("calibration", "score_quantiles"):
            if key in x:
                o[key] = x[key]
        outputs.append(o)
    return {
        "onnx_file": "step.onnx",
        "model_version": "",
        "state_size": int(state_size),
        "reset_gap_ms": int(reset_gap_ms),
        "lifetime_features": life_feats,
        "inputs": stream_io_spec(N, S, P, len(life_feats), state_size),
        "outputs": outputs,
        "graph_outputs": [{"name": "scores", "dtype": "float32", "shape": ["batch", len(F.OUTPUT_NAMES)]},
                          {"name": "state_out", "dtype": "float32", "shape": ["batch", int(state_size)]}],
        "reasons": R.streaming_spec_section(list(profile_names), [f["name"] for f in life_feats]),
        "golden_file": "golden-step.jsonl",
    }


def export_step_onnx(model, path: str, example: Dict[str, np.ndarray], life: np.ndarray) -> None:
    """step.onnx: opset 17, the six window inputs + lifetime + state -> scores [B, O], state_out [B, Z]; dynamic
    batch axis; passes onnx.checker."""
    from .streaming import STREAM_INPUTS, STREAM_OUTPUTS
    model.eval()
    B = len(life)
    args = tuple(torch.from_numpy(example[n]) for n in F.INPUT_NAMES) + (
        torch.from_numpy(life), torch.zeros(B, model.state_size))
    dyn = {n: {0: "batch"} for n in STREAM_INPUTS + STREAM_OUTPUTS}
    kwargs = dict(input_names=STREAM_INPUTS, output_names=STREAM_OUTPUTS, opset_version=OPSET,
                  dynamic_axes=dyn, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    import warnings
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, path, **kwargs)
    import onnx
    m = onnx.load(path)
    # the tracer names the state's width after a Concat: write the static sizes the spec declares
    for out, width in zip(m.graph.output, (len(F.OUTPUT_NAMES), model.state_size)):
        d = out.type.tensor_type.shape.dim[1]
        d.Clear()
        d.dim_value = width
    onnx.checker.check_model(m)
    onnx.save(m, path)


def pick_golden_users(encoder: F.Encoder, n: int, seed: int, max_events: int = 300) -> list:
    """Real users for golden-step.jsonl: a third with at most N events, the rest with more than N; every one with at
    most max_events events; users with a gap beyond the window horizon first."""
    ev = encoder.ev
    gid = encoder.gid
    starts = np.nonzero(np.r_[True, gid[1:] != gid[:-1]])[0]
    ends = np.r_[starts[1:], len(gid)]
    lens = ends - starts
    gap = np.zeros(len(starts), dtype=bool)
    for j, (a, b) in enumerate(zip(starts, ends)):
        gap[j] = b - a > 1 and bool((np.diff(encoder.t[a:b]) > encoder.H).any())
    rng = np.random.default_rng(seed)
    short = np.nonzero((lens <= encoder.N) & (lens >= 2))[0]
    long_ = np.nonzero((lens > encoder.N) & (lens <= max_events))[0]
    long_gap = long_[gap[long_]]
    long_rest = long_[~gap[long_]]
    k_short = min(len(short), max(1, n // 3))
    chosen = list(rng.choice(short, k_short, replace=False)) if k_short else []
    k = n - len(chosen)
    pick = list(rng.choice(long_gap, min(k, len(long_gap)), replace=False)) if len(long_gap) else []
    if len(pick) < k and len(long_rest):
        pick += list(rng.choice(long_rest, min(k - len(pick), len(long_rest)), replace=False))
    chosen += pick
    if len(chosen) < n:  # small data: top up with any user
        rest = np.setdiff1d(np.arange(len(starts)), np.array(chosen, dtype=np.int64))
        chosen += list(rng.choice(rest, min(n - len(chosen), len(rest)), replace=False))
    return [np.arange(starts[j], ends[j]) for j in sorted(int(c) for c in chosen)]


def write_golden_step(path: str, encoder: F.Encoder, user_rows: list, tensors_of, life_of, model) -> dict:
    """One line per user: canonical events, standardised lifetime features, step() scores per event (state fed
    back, zero at the user's first event and after a reset), final state. tensors_of(rows) / life_of(rows) give the
    standardised window tensors / lifetime features of rows; life_of also returns the reset flags."""
    from .streaming import run_steps
    ev = encoder.ev
    stats = {"users": 0, "events": 0, "users_over_N": 0, "users_with_gap_over_horizon": 0}
    with open(path, "w", encoding="utf-8") as f:
        for rows in user_rows:
            T = tensors_of(rows)
            life, start = life_of(rows)
            idx = np.arange(len(rows))
            scores, state = [], None
            cuts = list(np.nonzero(start)[0]) + [len(rows)]
            for a, b in zip(cuts[:-1], cuts[1:]):
                p, _, s = run_steps(model, T, life, idx[a:b])
                scores.append(p)
                state = torch.from_numpy(s[None])
            scores = np.concatenate(scores)
            rec = {"user_id": str(ev.user[rows[0]]),
                   "events": [ev.canonical(int(i)) for i in rows],
                   "lifetime": [[f32(x) for x in row] for row in life],
                   "scores": [[f32(x) for x in row] for row in scores],
                   "state_final": [f32(x) for x in state[0].numpy()]}
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            stats["users"] += 1
            stats["events"] += len(rows)
            stats["users_over_N"] += int(len(rows) > encoder.N)
            stats["users_with_gap_over_horizon"] += int(len(rows) > 1 and
                                                        bool((np.diff(encoder.t[rows]) > encoder.H).any()))
    return stats


def save_bundle_checkpoint(path: str, model, arch: str, streaming_model=None) -> None:
    ck = {"arch": arch, "config": model.cfg, "state_dict": model.state_dict()}
    if streaming_model is not None:
        ck["streaming"] = {"config": streaming_model.cfg, "n_life": streaming_model.n_life,
                           "state_dict": streaming_model.state_dict()}
    torch.save(ck, path)


def load_streaming(model_dir: str):
    """(spec, streaming PyTorch model) from a format 3 bundle."""
    from . import lifetime as LT
    from .streaming import build_streaming
    spec, _ = load_bundle(model_dir)
    if "streaming" not in spec:
        raise ValueError(f"{model_dir}: model-spec.json has no streaming section (format 2 bundles serve "
                         "--scoring windowed only)")
    st = spec["streaming"]
    LT.check_names([f["name"] for f in st["lifetime_features"]], spec["event_types"]["vocabulary"])
    ck = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
    if "streaming" not in ck:
        raise ValueError(f"{model_dir}: model.pt has no streaming weights")
    m = build_streaming(spec, len(spec["profile_features"]), ck["streaming"]["n_life"], ck["streaming"]["config"])
    m.load_state_dict(ck["streaming"]["state_dict"])
    m.eval()
    if m.state_size != st["state_size"]:
        raise ValueError(f"{model_dir}: state_size {st['state_size']} != the weights' {m.state_size}")
    return spec, m
