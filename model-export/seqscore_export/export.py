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


def canonical_json(obj) -> bytes:
    """The canonical JSON used for model_version: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def model_version(onnx_bytes: bytes, spec: dict) -> str:
    s = {k: v for k, v in spec.items() if k != "model_version"}
    return hashlib.sha256(onnx_bytes + canonical_json(s)).hexdigest()[:16]


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
    if spec.get("format_version") not in (1, FORMAT_VERSION):
        raise ValueError(f"{model_dir}: model-spec.json format_version {spec.get('format_version')} is not 1 or "
                         f"{FORMAT_VERSION}")
    ck = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
    model = build(ck["arch"], spec, len(spec["profile_features"]), ck["config"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return spec, model


def finalize_spec(out_dir: str, spec: dict) -> dict:
    with open(os.path.join(out_dir, "model.onnx"), "rb") as f:
        onnx_bytes = f.read()
    spec["model_version"] = model_version(onnx_bytes, spec)
    with open(os.path.join(out_dir, "model-spec.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    return spec
