"""The streaming fusion model (format 3, docs/feature-contract.md "Streaming model"): one event per step, from the
event's window, its lifetime features and a recurrent state that the job carries over the user's whole history.

- token: ``SeqEmbed`` of the window (the windowed model's token embedding);
- attention read-out at the newest position: one Transformer encoder layer (the windowed model's masked-event
  pretrained branch) evaluated only where the query is the newest token, keys/values every real window position.
  With one post-norm layer the newest position's output of the bidirectional layer *is* this read-out, so the
  pretrained weights carry over exactly;
- an LSTM cell whose input is [newest token embedding, standardised lifetime features] and whose state (h, c) is
  the recurrent state: zeros for a new user, after a reset, or after a model change;
- a profile MLP over profile + lifetime features, an MLP head over [h, read-out, profile MLP], a wide linear path
  from profile + lifetime into each output's logit, and Platt scaling inside the graph.

``step()`` scores one event per row (what step.onnx is); ``forward_segments()`` is the training forward over whole
user sequences (nn.LSTM over each segment); both compute the same numbers (tests/test_streaming.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from . import features as F
from .model import DEFAULT_CONFIG, ProfileMLP, SeqEmbed, TransformerBranch

log = logging.getLogger("seqscore_export")

STREAM_INPUTS = F.INPUT_NAMES + ["lifetime", "state"]
STREAM_OUTPUTS = ["scores", "state_out"]
STREAM_CONFIG = dict(DEFAULT_CONFIG, state_hidden=16, use_state=True, use_lifetime=True)
NEG = -1e9  # additive attention bias at padding: exp() of it is exactly 0 in float32


class StreamingModel(nn.Module):
    def __init__(self, n_types, item_buckets, category_buckets, n_seq, n_profile, n_life, max_events, cfg=None):
        super().__init__()
        cfg = dict(STREAM_CONFIG, **(cfg or {}))
        if cfg["encoder_layers"] != 1:
            raise ValueError("the streaming read-out is one encoder layer evaluated at the newest position")
        self.cfg = cfg
        d, H = cfg["d_model"], cfg["state_hidden"]
        self.n_profile, self.n_life, self.hidden = n_profile, n_life, H
        self.state_size = 2 * H
        self.embed = SeqEmbed(n_types, item_buckets, category_buckets, n_seq, cfg)
        self.transformer = TransformerBranch(cfg, max_events)  # same parameter names as the windowed branch
        self.lstm = nn.LSTM(d + n_life, H, batch_first=True)
        self.profile_mlp = ProfileMLP(n_profile + n_life, cfg)
        self.wide = nn.Linear(n_profile + n_life, 2)
        self.head = nn.Sequential(nn.Dropout(cfg["dropout"]), nn.Linear(H + d + self.profile_mlp.out_dim,
                                                                         cfg["head_hidden"]), nn.ReLU(),
                                  nn.Linear(cfg["head_hidden"], 2))
        nn.init.zeros_(self.head[-1].weight)  # starts as its wide path (the LR on profile + lifetime)
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("calib_a", torch.ones(2))
        self.register_buffer("calib_b", torch.zeros(2))
        heads = cfg["heads"]
        hm = (torch.arange(d)[:, None] // (d // heads) == torch.arange(heads)[None, :]).float()
        self.register_buffer("head_map", hm, persistent=False)  # [d, heads]: dimension i belongs to head i // (d/h)

    # ---------------------------------------------------------------- shared pieces
    def readout(self, x, mask):
        """The encoder layer's output at the newest (last) position: x [B, n, d] embedded window (n <= N, aligned
        to the window's end), mask [B, n]. Same computation as nn.TransformerEncoderLayer (post-norm, ReLU), written
        without reshapes so that the exported graph stays small: a head's score is the sum of q * k over its
        dimensions (a matmul with the one-hot head map), its weights spread back to its dimensions the same way."""
        tr = self.transformer
        n = x.shape[1]
        pos = tr.pos if n == tr.pos.shape[1] else tr.pos[:, tr.pos.shape[1] - n:]
        h = tr.norm(x + pos)
        layer = tr.encoder.layers[0]
        att = layer.self_attn
        d = self.cfg["d_model"]
        hd = d // att.num_heads
        W, b = att.in_proj_weight, att.in_proj_bias
        q = Fn.linear(h[:, -1], W[:d], b[:d]) * (float(hd) ** -0.5)           # [B, d]
        k = Fn.linear(h, W[d:2 * d], b[d:2 * d])                               # [B, n, d]
        v = Fn.linear(h, W[2 * d:], b[2 * d:])                                 # [B, n, d]
        s = torch.matmul(q.unsqueeze(1) * k, self.head_map)                   # [B, n, heads]
        s = s + ((1.0 - mask) * NEG).unsqueeze(-1)
        a = torch.softmax(s, dim=1)
        a = Fn.dropout(a, att.dropout, self.training)
        o = (torch.matmul(a, self.head_map.t()) * v).sum(1)                   # [B, d]
        o = att.out_proj(o)
        y = layer.norm1(h[:, -1] + layer.dropout1(o))
        y = layer.norm2(y + layer.dropout2(layer.linear2(layer.dropout(torch.relu(layer.linear1(y))))))
        return y

    def _life(self, lifetime):
        return lifetime if self.cfg["use_lifetime"] else torch.zeros_like(lifetime)

    def _head_logits(self, hstate, read, profile, lifetime):
        pl = torch.cat([profile, lifetime], dim=-1)
        deep = self.head(torch.cat([hstate, read, self.profile_mlp(pl)], dim=-1))
        return deep + self.wide(pl)

    # ---------------------------------------------------------------- one event per row (exported)
    def step_logits(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile, lifetime, state):
        lifetime = self._life(lifetime)
        x = self.embed(event_type, item_bucket, category_bucket, seq_numeric, mask)
        read = self.readout(x, mask)
        H = self.hidden
        if not self.cfg["use_state"]:
            state = torch.zeros_like(state)
        h0, c0 = state[:, :H], state[:, H:]
        # one Gemm for both of the cell's products: [x, lifetime, h] @ [W_ih, W_hh]^T + (b_ih + b_hh)
        gates = Fn.linear(torch.cat([x[:, -1], lifetime, h0], dim=-1),
                          torch.cat([self.lstm.weight_ih_l0, self.lstm.weight_hh_l0], dim=1),
                          self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0)
        sg = torch.sigmoid(gates)  # PyTorch's gate order i, f, g, o; g takes tanh
        c1 = sg[:, H:2 * H] * c0 + sg[:, :H] * torch.tanh(gates[:, 2 * H:3 * H])
        h1 = sg[:, 3 * H:] * torch.tanh(c1)
        return self._head_logits(h1, read, profile, lifetime), torch.cat([h1, c1], dim=-1)

    def step(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile, lifetime, state):
        """(scores [B, 2] calibrated probabilities, state_out [B, Z]): what step.onnx computes."""
        z, s = self.step_logits(event_type, item_bucket, category_bucket, seq_numeric, mask, profile, lifetime,
                                state)
        return torch.sigmoid(z * self.calib_a + self.calib_b), s

    forward = step  # torch.onnx.export traces forward()

    # ---------------------------------------------------------------- whole user sequences (training)
    def lstm_states(self, tok, lifetime, seg_index):
        """h after every event. tok: [E, len(SEQ)+...] pieces of the newest window position per event (see
        ``newest``), lifetime [E, F]; seg_index [S, Tmax] long: flat event index per (segment, step), -1 = none.
        Each segment starts from a zero state."""
        x = self.embed(*tok)[:, 0]
        inp = torch.cat([x, self._life(lifetime)], dim=-1)
        if not self.cfg["use_state"]:
            seg_index = torch.arange(len(inp)).reshape(-1, 1)
        padded = torch.cat([inp, inp.new_zeros(1, inp.shape[1])])[seg_index]  # index -1 -> the zero row
        out, _ = self.lstm(padded)
        valid = seg_index >= 0
        h = inp.new_zeros(len(inp), self.hidden)
        h = h.index_put((seg_index[valid],), out[valid])
        return h

    def forward_segments(self, tok, lifetime, seg_index, win, sel, profile_sel):
        """Logits [len(sel), 2] at flat events ``sel`` of a batch of segments: ``win`` are the (trimmed) window
        inputs of those events (5 sequence tensors), profile_sel their profiles."""
        h = self.lstm_states(tok, lifetime, seg_index)
        x = self.embed(*win)
        read = self.readout(x, win[4])
        return self._head_logits(h[sel], read, profile_sel, self._life(lifetime[sel]))


def build_streaming(constants: dict, n_profile: int, n_life: int, cfg=None) -> StreamingModel:
    return StreamingModel(len(constants["event_types"]["vocabulary"]), constants["hash"]["item_buckets"],
                          constants["hash"]["category_buckets"], len(F.SEQUENCE_FEATURES), n_profile, n_life,
                          constants["window"]["max_events"], cfg)


# ---------------------------------------------------------------- data layout

SEQ5 = ("event_type", "item_bucket", "category_bucket", "seq_numeric", "mask")


def newest(T: Dict[str, np.ndarray], idx) -> List[torch.Tensor]:
    """The newest window position of events idx, as 5 sequence inputs with n = 1."""
    out = []
    for name in SEQ5:
        a = T[name][idx][:, -1:]
        out.append(torch.from_numpy(np.ascontiguousarray(a)))
    return out


def windows(T: Dict[str, np.ndarray], idx) -> List[torch.Tensor]:
    """The 5 sequence inputs of events idx with the left padding they all share dropped (changes no output: the key
    padding bias and the end-aligned positions)."""
    m = T["mask"][idx]
    real = m.any(0)
    first = int(np.argmax(real)) if real.any() else m.shape[1] - 1
    return [torch.from_numpy(np.ascontiguousarray(T[n][idx][:, first:])) for n in SEQ5]


def segments(users: np.ndarray, start: np.ndarray, rows: np.ndarray) -> List[np.ndarray]:
    """Contiguous runs of ``rows`` (sorted event indices) of one user, cut where ``start`` (record empty: new user or
    reset). Each is one recurrent-state segment."""
    rows = np.asarray(rows)
    if len(rows) == 0:
        return []
    cut = np.ones(len(rows), dtype=bool)
    cut[1:] = (users[rows[1:]] != users[rows[:-1]]) | start[rows[1:]] | (rows[1:] != rows[:-1] + 1)
    b = np.nonzero(cut)[0]
    return np.split(rows, b[1:])


def seg_layout(segs: List[np.ndarray]):
    """(flat event indices [E], seg_index [S, Tmax] into the flat order, -1 = padding)."""
    flat = np.concatenate(segs)
    Tmax = max(len(s) for s in segs)
    idx = np.full((len(segs), Tmax), -1, dtype=np.int64)
    o = 0
    for j, s in enumerate(segs):
        idx[j, :len(s)] = np.arange(o, o + len(s))
        o += len(s)
    return flat, torch.from_numpy(idx)


def predict_logits(model: StreamingModel, T, life: np.ndarray, segs: List[np.ndarray], n: int,
                   events_per_batch: int = 4096, win_batch: int = 1024) -> np.ndarray:
    """[n, 2] logits for every event of ``segs`` (NaN elsewhere), through the parallel forward."""
    model.eval()
    out = np.full((n, 2), np.nan)
    order = sorted(range(len(segs)), key=lambda j: len(segs[j]))
    groups, cur, size = [], [], 0
    for j in order:
        cur.append(segs[j])
        size += len(segs[j])
        if size >= events_per_batch:
            groups.append(cur)
            cur, size = [], 0
    if cur:
        groups.append(cur)
    with torch.no_grad():
        for g in groups:
            flat, si = seg_layout(g)
            tok = newest(T, flat)
            lt = torch.from_numpy(life[flat])
            h = model.lstm_states(tok, lt, si)
            L = T["mask"][flat].sum(1)
            o2 = np.argsort(L, kind="stable")
            for a in range(0, len(flat), win_batch):
                sel = o2[a:a + win_batch]
                win = windows(T, flat[sel])
                read = model.readout(model.embed(*win), win[4])
                z = model._head_logits(h[torch.from_numpy(sel)], read, torch.from_numpy(T["profile"][flat[sel]]),
                                       model._life(lt[torch.from_numpy(sel)]))
                out[flat[sel]] = z.numpy()
    return out


def run_steps(model: StreamingModel, T, life: np.ndarray, rows: np.ndarray, state=None):
    """Event by event through step(), one user's rows in order (the state fed back); zero state where the caller
    passes none. Returns (scores [len(rows), 2], logits, final state)."""
    model.eval()
    Z = model.state_size
    s = torch.zeros(1, Z) if state is None else state
    scores, logits = [], []
    with torch.no_grad():
        for r in rows:
            args = [torch.from_numpy(T[n][r:r + 1]) for n in F.INPUT_NAMES] + [torch.from_numpy(life[r:r + 1])]
            z, s_new = model.step_logits(*args, s)
            p = torch.sigmoid(z * model.calib_a + model.calib_b)
            scores.append(p[0].numpy())
            logits.append(z[0].numpy())
            s = s_new
    return np.array(scores), np.array(logits), s[0].numpy()


# ---------------------------------------------------------------- training

@dataclass
class StreamOptions:
    epochs: int = 6
    users_per_batch: int = 8
    loss_fraction: float = 0.25     # events of a batch whose windows are read out and scored (the LSTM sees all)
    restart_fraction: float = 0.3   # users of a batch whose state restarts at zero at a random event
    lr: float = 1e-3
    wide_lr: Optional[float] = None  # learning rate of the wide path (None: lr)
    weight_decay: float = 1e-4
    max_users_per_epoch: Optional[int] = None


def _masked_bce(logits, y, w):
    el = Fn.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return ((el * w).sum(0) / w.sum(0).clamp(min=1.0)).sum()


def user_runs(users: np.ndarray, rows: np.ndarray) -> List[np.ndarray]:
    rows = np.asarray(rows)
    cut = np.ones(len(rows), dtype=bool)
    cut[1:] = users[rows[1:]] != users[rows[:-1]]
    return np.split(rows, np.nonzero(cut)[0][1:])


def fit_streaming(constants: dict, n_profile: int, n_life: int, cfg: dict, T, life: np.ndarray, start: np.ndarray,
                  y: np.ndarray, w: np.ndarray, users: np.ndarray, train_rows: np.ndarray, so: StreamOptions,
                  seed: int, wide_init=None, seq_init: Optional[dict] = None,
                  on_epoch: Optional[Callable[[int, StreamingModel], None]] = None):
    """Trains the streaming model for so.epochs passes over the training users. Each batch: users_per_batch users,
    each one whole sequence (cut at resets), some cut once more at a random restart point (state zero from there,
    lifetime record intact); nn.LSTM runs over every event; loss_fraction of the events are scored."""
    torch.manual_seed(seed)
    model = build_streaming(constants, n_profile, n_life, cfg)
    if wide_init is not None:
        with torch.no_grad():
            model.wide.weight.copy_(torch.from_numpy(wide_init[0]))
            model.wide.bias.copy_(torch.from_numpy(wide_init[1]))
    if seq_init is not None:
        model.load_state_dict(seq_init, strict=False)
    if on_epoch is not None:
        on_epoch(0, model)
    rng = np.random.default_rng(seed)
    wide = list(model.wide.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("wide.")]
    optim = torch.optim.Adam([{"params": rest}, {"params": wide, "lr": so.lr if so.wide_lr is None else so.wide_lr}],
                             lr=so.lr, weight_decay=so.weight_decay)
    runs = user_runs(users, train_rows)
    t0 = time.time()
    history = []
    for epoch in range(1, so.epochs + 1):
        model.train()
        perm = rng.permutation(len(runs))
        if so.max_users_per_epoch:
            perm = perm[:so.max_users_per_epoch]
        # groups of 8 batches sorted by length, so that a batch's sequences are alike in length; then shuffled
        span = so.users_per_batch * 8
        batches = []
        for a in range(0, len(perm), span):
            chunk = sorted(perm[a:a + span], key=lambda j: len(runs[j]))
            batches += [chunk[b:b + so.users_per_batch] for b in range(0, len(chunk), so.users_per_batch)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        total, nb = 0.0, 0
        for bu in batches:
            segs = []
            for j in bu:
                r = runs[j]
                parts = segments(users, start, r)
                if len(r) > 1 and rng.random() < so.restart_fraction:
                    cut = r[int(rng.integers(1, len(r)))]
                    parts = [q for p in parts for q in ((p[p < cut], p[p >= cut]) if p[0] < cut <= p[-1] else (p,))
                             if len(q)]
                segs += parts
            flat, si = seg_layout(segs)
            k = max(1, int(round(so.loss_fraction * len(flat))))
            sel = np.sort(rng.choice(len(flat), k, replace=False))
            win = windows(T, flat[sel])
            z = model.forward_segments(newest(T, flat), torch.from_numpy(life[flat]), si, win,
                                       torch.from_numpy(sel), torch.from_numpy(T["profile"][flat[sel]]))
            loss = _masked_bce(z, torch.from_numpy(y[flat[sel]]), torch.from_numpy(w[flat[sel]]))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            total += float(loss)
            nb += 1
        history.append({"epoch": epoch, "train_loss": total / max(1, nb), "seconds": round(time.time() - t0, 1)})
        log.info("streaming epoch %d: loss %.4f (%.0fs)", epoch, total / max(1, nb), time.time() - t0)
        if on_epoch is not None:
            on_epoch(epoch, model)
    model.eval()
    return model, history, time.time() - t0


def save_state(model: StreamingModel) -> dict:
    return {"config": model.cfg, "n_life": model.n_life, "state_dict": model.state_dict()}
