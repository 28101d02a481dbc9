"""Fitting: the logistic regression (full-batch L-BFGS), the deep models (Adam on sampled windows, multi-task
masked BCE, evaluated after every epoch), masked-event pretraining of the Transformer branch, and the heuristic.
The cross-validation harness that calls these lives in cv.py."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from . import features as F
from .metrics import fit_platt, roc_auc
from .model import ARCHS, WIDE_ARCHS, MaskedEventModel, build

log = logging.getLogger("seqscore_export")


@dataclass
class TrainOptions:
    epochs: int = 6                 # maximum epochs of a deep model; cross-validation picks how many to keep
    rows_per_epoch: int = 8192      # training windows sampled (without replacement) per epoch
    batch_size: int = 128
    lr: float = 3e-3                # Adam learning rate of models trained from scratch (and of pretraining)
    wide_lr: float = 1e-3           # ... of wide & deep models, which start at the logistic regression
    weight_decay: float = 1e-4
    logistic_l2: float = 1e-3       # L2 penalty of the logistic regression, per event, on standardised features
    seed: int = 17
    folds: int = 5
    threads: int = 1
    pretrain_epochs: int = 1
    pretrain_windows: int = 24576   # windows per pretraining epoch
    mask_fraction: float = 0.15
    max_users: Optional[int] = None


def set_threads(n: int) -> None:
    # (Not set_num_interop_threads: torch 1.13 aborts the process when it is called a second time.)
    torch.set_num_threads(max(1, n))


SEQ_INPUTS = ("event_type", "item_bucket", "category_bucket", "seq_numeric", "mask")


def batch(T: Dict[str, np.ndarray], idx, trim: bool = True) -> List[torch.Tensor]:
    """The inputs of rows idx. trim: drop the left padding that every row of the batch shares, which changes no
    output (model.LSTMBranch, model.TransformerBranch.tokens) and saves most of the sequence work on short windows."""
    out = {n: T[n][idx] for n in F.INPUT_NAMES}
    if trim:
        real = out["mask"].any(0)
        first = int(np.argmax(real)) if real.any() else out["mask"].shape[1] - 1
        if first > 0:
            for n in SEQ_INPUTS:
                out[n] = out[n][:, first:]
    return [torch.from_numpy(np.ascontiguousarray(out[n])) for n in F.INPUT_NAMES]


def length_order(T, rows: np.ndarray) -> np.ndarray:
    """rows sorted by window length (stable), so that batches share padding."""
    L = T["mask"][rows].sum(1)
    return rows[np.argsort(L, kind="stable")]


def predict_logits(model, T, rows=None, batch_size=1024) -> np.ndarray:
    """[R, 2] raw logits, in the order of rows."""
    model.eval()
    rows = np.arange(len(T["mask"])) if rows is None else np.asarray(rows)
    order = np.argsort(T["mask"][rows].sum(1), kind="stable")
    out = np.zeros((len(rows), 2))
    with torch.no_grad():
        for a in range(0, len(rows), batch_size):
            sel = order[a:a + batch_size]
            out[sel] = model.forward_logits(*batch(T, rows[sel])).numpy()
    return out


def predict(model, T, rows=None, batch_size=2048) -> np.ndarray:
    """[R, 2] calibrated probabilities (purchase_30m, churn_24h), as the exported graph computes them."""
    model.eval()
    n = len(T["mask"]) if rows is None else len(rows)
    out = []
    with torch.no_grad():
        for a in range(0, n, batch_size):
            idx = np.arange(a, min(n, a + batch_size)) if rows is None else rows[a:a + batch_size]
            p1, p2 = model(*batch(T, idx, trim=False))
            out.append(torch.stack([p1, p2], 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def bucketed_batches(T, rows: np.ndarray, batch_size: int, rng, group: int = 8):
    """Batches of rows (already in random order): each run of `group` batches is sorted by window length, so that a
    batch shares most of its padding; the batches are then shuffled."""
    batches = []
    span = batch_size * group
    for a in range(0, len(rows), span):
        chunk = length_order(T, rows[a:a + span])
        batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _masked_bce(logits, y, w):
    el = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return ((el * w).sum(0) / w.sum(0).clamp(min=1.0)).sum()


def fit_logistic(T, y: np.ndarray, w: np.ndarray, rows: np.ndarray, l2: float, n_profile: int):
    """Logistic regression per output on the standardised profile: masked log loss + l2/2 * |weights|^2, full batch
    L-BFGS. Returns (weight [2, P], bias [2])."""
    X = torch.from_numpy(T["profile"][rows]).double()
    Y = torch.from_numpy(y[rows]).double()
    W = torch.from_numpy(w[rows]).double()
    coef = torch.zeros(n_profile, 2, dtype=torch.float64, requires_grad=True)
    # start at the base rate, so that an output without positives stays finite
    rate = (Y * W).sum(0) / W.sum(0).clamp(min=1.0)
    bias = torch.logit(rate.clamp(1e-4, 1 - 1e-4)).detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([coef, bias], lr=1.0, max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = X @ coef + bias
        el = torch.nn.functional.binary_cross_entropy_with_logits(z, Y, reduction="none")
        loss = ((el * W).sum(0) / W.sum(0).clamp(min=1.0)).sum() + 0.5 * l2 * (coef ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return coef.detach().numpy().T.astype(np.float32), bias.detach().numpy().astype(np.float32)


def logistic_model(constants, n_profile, cfg, coef, bias):
    m = build("logistic", constants, n_profile, cfg)
    with torch.no_grad():
        m.wide.weight.copy_(torch.from_numpy(coef))
        m.wide.bias.copy_(torch.from_numpy(bias))
    return m


def _make_hide(rng, mask: np.ndarray, frac: float) -> np.ndarray:
    valid = mask > 0
    r = rng.random(mask.shape)
    r[~valid] = 2.0
    hide = r < frac
    none = ~hide.any(1)
    if none.any():
        hide[np.nonzero(none)[0], r[none].argmin(1)] = True
    return hide


def pretrain(model, corpus, stats, rows: np.ndarray, opts: TrainOptions, seed: int) -> dict:
    """Masked-event pretraining of model.embed + model.transformer on corpus windows ``rows``. Mutates the model's
    embed and transformer in place; returns a small report."""
    if model.transformer is None or model.embed is None:
        raise ValueError("pretraining needs a model with a Transformer branch")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_types = model.embed.type_emb.num_embeddings - 1
    mem = MaskedEventModel(model.embed, model.transformer, n_types, model.embed.item_emb.num_embeddings - 1,
                           model.embed.cat_emb.num_embeddings - 1)
    opt = torch.optim.Adam(mem.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sm = np.array([f["mean"] for f in stats], dtype=np.float32)
    ss = np.array([f["std"] for f in stats], dtype=np.float32)
    t0 = time.time()
    losses = []
    for epoch in range(opts.pretrain_epochs):
        mem.train()
        perm = rows[rng.permutation(len(rows))][: opts.pretrain_windows]
        total, nb, acc_n, acc_ok = 0.0, 0, 0, 0
        for idx in bucketed_batches(corpus, perm, opts.batch_size, rng):
            mask = corpus["mask"][idx]
            real = mask.any(0)
            first = int(np.argmax(real))  # drop the batch's common left padding (changes no output)
            mask = np.ascontiguousarray(mask[:, first:])
            seq = (corpus["seq_raw"][idx][:, first:] - sm) / ss
            seq[mask == 0] = 0.0
            hide = _make_hide(rng, mask, opts.mask_fraction)
            et = torch.from_numpy(corpus["event_type"][idx][:, first:].astype(np.int64))
            ib = torch.from_numpy(corpus["item_bucket"][idx][:, first:].astype(np.int64))
            cb = torch.from_numpy(corpus["category_bucket"][idx][:, first:].astype(np.int64))
            h = torch.from_numpy(hide)
            lt, li, lc = mem(et, ib, cb, torch.from_numpy(seq.astype(np.float32)), torch.from_numpy(mask), h)
            loss = (torch.nn.functional.cross_entropy(lt, et[h]) + torch.nn.functional.cross_entropy(li, ib[h])
                    + torch.nn.functional.cross_entropy(lc, cb[h]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mem.parameters(), 5.0)
            opt.step()
            total += float(loss)
            nb += 1
            acc_n += int(h.sum())
            acc_ok += int((lt.argmax(1) == et[h]).sum())
        losses.append({"epoch": epoch + 1, "loss": total / max(1, nb), "type_accuracy": acc_ok / max(1, acc_n)})
        log.info("pretrain epoch %d: loss %.3f, masked type accuracy %.3f (%.0fs)", epoch + 1, total / max(1, nb),
                 acc_ok / max(1, acc_n), time.time() - t0)
    return {"epochs": losses, "windows": int(len(rows)), "seconds": round(time.time() - t0, 1)}


def fit_deep(arch: str, constants: dict, n_profile: int, cfg: dict, T, y, w, train_rows: np.ndarray,
             opts: TrainOptions, epochs: int, seed: int, wide_init=None, seq_init: Optional[dict] = None,
             on_epoch: Optional[Callable[[int, object], None]] = None):
    """Trains a deep model for ``epochs`` epochs of ``opts.rows_per_epoch`` sampled windows. A wide arch starts
    from the logistic regression ``wide_init`` = (coef, bias) with its deep head's last layer at zero, so that
    epoch 0 *is* the logistic regression. ``seq_init`` is a pretrained state for the embed and transformer.
    ``on_epoch(epoch, model)`` is called after every epoch (and for epoch 0 of a wide arch)."""
    torch.manual_seed(seed)
    model = build(arch, constants, n_profile, cfg)
    if arch in WIDE_ARCHS and wide_init is not None:
        with torch.no_grad():
            model.wide.weight.copy_(torch.from_numpy(wide_init[0]))
            model.wide.bias.copy_(torch.from_numpy(wide_init[1]))
    elif model.head is not None:
        # Without a linear start, start at the base rates, so that early epochs learn ranking, not the mean.
        rate = (y[train_rows] * w[train_rows]).sum(0) / np.maximum(w[train_rows].sum(0), 1.0)
        with torch.no_grad():
            model.head[-1].bias.copy_(torch.from_numpy(np.log(np.clip(rate, 1e-4, 1 - 1e-4)
                                                              / (1 - np.clip(rate, 1e-4, 1 - 1e-4))).astype(np.float32)))
    if seq_init is not None:
        model.load_state_dict(seq_init, strict=False)
    if on_epoch is not None and arch in WIDE_ARCHS:
        on_epoch(0, model)
    rng = np.random.default_rng(seed)
    lr = opts.wide_lr if arch in WIDE_ARCHS else opts.lr
    optim = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=opts.weight_decay)
    t0 = time.time()
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        perm = train_rows[rng.permutation(len(train_rows))][: opts.rows_per_epoch]
        total, nb = 0.0, 0
        for idx in bucketed_batches(T, perm, opts.batch_size, rng):
            loss = _masked_bce(model.forward_logits(*batch(T, idx)), torch.from_numpy(y[idx]),
                               torch.from_numpy(w[idx]))
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            total += float(loss)
            nb += 1
        history.append({"epoch": epoch, "train_loss": total / max(1, nb)})
        if on_epoch is not None:
            on_epoch(epoch, model)
    model.eval()
    return model, history, time.time() - t0


def build_seq_model(constants, n_profile, cfg, seed):
    """A fresh fusion model whose embed + transformer pretraining will initialise."""
    torch.manual_seed(seed)
    return build("fusion", constants, n_profile, cfg)


def seq_state(model) -> dict:
    """The embed + transformer part of a state dict (what pretraining produces)."""
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("embed.", "transformer."))}


# ---------------------------------------------------------------- the gradient-free heuristic

HEURISTIC = {
    "purchase_30m": "carts in the last 30 minutes (recent_cart)",
    "churn_24h": "fewer events in the last 24 hours (minus the window's length L), ties broken by a longer time "
                 "since the previous event",
}


def heuristic_scores(profile_raw: np.ndarray, names: List[str]) -> np.ndarray:
    """[R, 2] scores, higher = more likely; monotone in the named raw features, fitted to nothing."""
    i = {n: k for k, n in enumerate(names)}
    purchase = np.expm1(profile_raw[:, i["recent_cart"]])
    churn = -profile_raw[:, i["window_length"]] + 1e-6 * profile_raw[:, i["since_prev_event"]]
    return np.stack([purchase, churn], 1)


def platt_transform(scores: np.ndarray, y, w, rows) -> tuple:
    """(a, b) per output fitted on rows (masked), for scores that are not logits (the heuristic)."""
    out = []
    for j in range(2):
        m = w[rows, j] > 0
        out.append(fit_platt(scores[rows][m, j], y[rows][m, j], monotone=True))
    return out


def mean_auc(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    vals = []
    for j in range(2):
        m = w[:, j] > 0
        v = roc_auc(y[m, j], z[m, j])
        if v == v:
            vals.append(v)
    return float(np.mean(vals)) if vals else float("nan")


__all__ = ["ARCHS", "TrainOptions"]
