"""A cost probe, not a model: the served step graph with its attention keys and values read from a per-user cache
instead of computed from the window, for `bin/seqscore bench --kv-cache-probe` to time against step.onnx.

Issue #13 asked to keep either a per-user K/V cache or recompute K/V from the packed window, whichever is better.
In this architecture a cache cannot be exact: a window position's key and value depend on the newest event (its age,
same item and same category are relative to it, and learned positions count from the window's end), so every cached
row would change at every step. The probe still measures the most a cache could save: it is step.onnx with the
keys and values of the window positions taken as inputs [B, N, d] and only the newest position embedded. Its
scores are meaningless; its cost per call is what matters.
"""
from __future__ import annotations

import argparse
import inspect
import os
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from .export import OPSET, load_streaming


class KvCacheStep(nn.Module):
    """step.onnx's computation with K and V as inputs: the newest position is embedded for the query and the LSTM,
    the window's keys and values come from the cache."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, event_type, item_bucket, category_bucket, seq_numeric, mask, k_cache, v_cache, profile,
                lifetime, state):
        m = self.m
        tr = m.transformer
        x = m.embed(event_type, item_bucket, category_bucket, seq_numeric, torch.ones_like(event_type,
                                                                                        dtype=torch.float32))
        h = tr.norm(x[:, -1] + tr.pos[:, -1])
        layer = tr.encoder.layers[0]
        att = layer.self_attn
        d = m.cfg["d_model"]
        hd = d // att.num_heads
        W, b = att.in_proj_weight, att.in_proj_bias
        q = Fn.linear(h, W[:d], b[:d]) * (float(hd) ** -0.5)
        s = torch.matmul(q.unsqueeze(1) * k_cache, m.head_map) + ((1.0 - mask) * -1e9).unsqueeze(-1)
        a = torch.softmax(s, dim=1)
        o = att.out_proj((torch.matmul(a, m.head_map.t()) * v_cache).sum(1))
        y = layer.norm1(h + o)
        read = layer.norm2(y + layer.linear2(torch.relu(layer.linear1(y))))
        H = m.hidden
        gates = Fn.linear(torch.cat([x[:, -1], lifetime, state[:, :H]], dim=-1),
                          torch.cat([m.lstm.weight_ih_l0, m.lstm.weight_hh_l0], dim=1),
                          m.lstm.bias_ih_l0 + m.lstm.bias_hh_l0)
        sg = torch.sigmoid(gates)
        c1 = sg[:, H:2 * H] * state[:, H:] + sg[:, :H] * torch.tanh(gates[:, 2 * H:3 * H])
        h1 = sg[:, 3 * H:] * torch.tanh(c1)
        z = m._head_logits(h1, read, profile, lifetime)
        return torch.sigmoid(z * m.calib_a + m.calib_b), torch.cat([h1, c1], dim=-1)


INPUTS = ["event_type", "item_bucket", "category_bucket", "seq_numeric", "mask", "k_cache", "v_cache", "profile",
          "lifetime", "state"]


def export(model_dir: str, out: str) -> str:
    spec, m = load_streaming(model_dir)
    N = spec["window"]["max_events"]
    S = len(spec["sequence_features"])
    P = len(spec["profile_features"])
    F = len(spec["streaming"]["lifetime_features"])
    d = m.cfg["d_model"]
    B = 2
    args = (torch.ones(B, 1, dtype=torch.int64), torch.ones(B, 1, dtype=torch.int64),
            torch.ones(B, 1, dtype=torch.int64), torch.zeros(B, 1, S), torch.ones(B, N), torch.zeros(B, N, d),
            torch.zeros(B, N, d), torch.zeros(B, P), torch.zeros(B, F), torch.zeros(B, m.state_size))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "probe-kvcache.onnx")
    kwargs = dict(input_names=INPUTS, output_names=["scores", "state_out"], opset_version=OPSET,
                  dynamic_axes={n: {0: "batch"} for n in INPUTS + ["scores", "state_out"]})
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    probe = KvCacheStep(m).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(probe, args, path, **kwargs)
    import onnx
    onnx.checker.check_model(onnx.load(path))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m seqscore_export.kv_probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "default"),
                    help="a format 3 bundle directory")
    ap.add_argument("--out", required=True, help="directory for probe-kvcache.onnx")
    args = ap.parse_args(argv)
    print(export(args.model, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
