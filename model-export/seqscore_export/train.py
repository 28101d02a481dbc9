"""Training: user split, normalisation on the training split, multi-task masked BCE, early stopping on
validation ROC-AUC, the fusion model and every ablation trained the same way on the same split."""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from . import data as data_mod
from . import features as F
from . import labels as labels_mod
from .metrics import pr_auc, roc_auc
from .model import ARCHS, build

log = logging.getLogger("seqscore_export")


@dataclass
class TrainOptions:
    epochs: int = 6
    patience: int = 2
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 17
    validation_fraction: float = 0.2
    max_pos_weight: float = 20.0
    threads: int = 2
    max_users: Optional[int] = None
    max_batches_per_epoch: Optional[int] = None
    rows_per_epoch: Optional[int] = 12000   # training windows sampled (without replacement) per epoch; None = all
    val_rows_for_stopping: Optional[int] = 4000  # fixed validation subset used for early stopping; None = all


@dataclass
class Prepared:
    events: data_mod.Events
    report: data_mod.DropReport
    constants: dict
    encoder: F.Encoder
    tensors: Dict[str, np.ndarray]
    purchase: np.ndarray
    churn: np.ndarray
    churn_mask: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    seq_feats: List[dict]
    prof_feats: List[dict]
    data_end_ms: int


def split_users(user: np.ndarray, seed: int, validation_fraction: float):
    """Deterministic user split: sorted distinct user ids, permuted with numpy default_rng(seed)."""
    uniq = np.unique(user.astype(str))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    n_val = max(1, int(round(validation_fraction * len(uniq)))) if len(uniq) > 1 else 0
    val_users = set(uniq[perm[:n_val]].tolist())
    is_val = np.fromiter((u in val_users for u in user.astype(str)), dtype=bool, count=len(user))
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def prepare(ev, report, constants, opts: TrainOptions) -> Prepared:
    if opts.max_users:
        uniq = list(dict.fromkeys(ev.user.tolist()))[: opts.max_users]
        keep = np.isin(ev.user.astype(str), np.array(uniq, dtype=str))
        ev = ev.take(np.nonzero(keep)[0])
    enc = F.Encoder(ev, constants)
    t0 = time.time()
    rows = np.arange(len(ev))
    raws = [enc.encode_raw(rows[a:a + F.CHUNK]) for a in range(0, len(rows), F.CHUNK)]
    raw = {k: np.concatenate([r[k] for r in raws]) for k in raws[0]}
    log.info("encoded %d windows in %.1fs", len(ev), time.time() - t0)
    vocab = constants["event_types"]["vocabulary"]
    data_end = int(ev.time_ms.max())
    purchase, churn, cmask = labels_mod.compute_labels(ev.user, ev.etype, ev.time_ms, vocab.index("buy") + 1, data_end)
    tr, va = split_users(ev.user, opts.seed, opts.validation_fraction)
    if len(tr) == 0 or len(va) == 0:
        raise data_mod.DataError("need at least two users to split into training and validation")
    seq_feats, prof_feats = F.compute_stats(raw, tr, vocab)
    tensors = F.standardise(raw, seq_feats, prof_feats)
    return Prepared(ev, report, constants, enc, tensors, purchase, churn, cmask, tr, va, seq_feats, prof_feats, data_end)


def _batch(tensors, idx):
    return [torch.from_numpy(tensors[n][idx]) for n in F.INPUT_NAMES]


def predict(model, tensors, rows=None, batch_size=1024) -> np.ndarray:
    """[R, 2] probabilities (purchase_30m, churn_24h)."""
    model.eval()
    n = len(tensors["mask"]) if rows is None else len(rows)
    out = []
    with torch.no_grad():
        for a in range(0, n, batch_size):
            idx = np.arange(a, min(n, a + batch_size)) if rows is None else rows[a:a + batch_size]
            p1, p2 = model(*_batch(tensors, idx))
            out.append(torch.stack([p1, p2], 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def evaluate_scores(p: np.ndarray, purchase, churn, cmask) -> dict:
    m = cmask > 0
    return {
        "purchase_30m": {"roc_auc": roc_auc(purchase, p[:, 0]), "pr_auc": pr_auc(purchase, p[:, 0]),
                         "events": int(len(purchase)), "positives": int(purchase.sum())},
        "churn_24h": {"roc_auc": roc_auc(churn[m], p[m, 1]), "pr_auc": pr_auc(churn[m], p[m, 1]),
                      "events": int(m.sum()), "positives": int(churn[m].sum())},
    }


def _score(m: dict) -> float:
    vals = [m["purchase_30m"]["roc_auc"], m["churn_24h"]["roc_auc"]]
    vals = [v for v in vals if v == v]
    return float(np.mean(vals)) if vals else 0.0


def train_model(arch: str, prep: Prepared, opts: TrainOptions, cfg=None):
    torch.manual_seed(opts.seed)
    np_rng = np.random.default_rng(opts.seed)
    model = build(arch, prep.constants, len(prep.prof_feats), cfg)
    lr = opts.lr * (5 if arch == "logistic" else 1)
    optim = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=opts.weight_decay)
    tr = prep.train_rows
    y = np.stack([prep.purchase, prep.churn], 1).astype(np.float32)
    w = np.stack([np.ones_like(prep.churn_mask), prep.churn_mask], 1).astype(np.float32)
    pos_w = []
    for j in range(2):
        yy, ww = y[tr, j], w[tr, j]
        pos, neg = float((yy * ww).sum()), float(((1 - yy) * ww).sum())
        pos_w.append(min(opts.max_pos_weight, neg / pos) if pos > 0 else 1.0)
    pos_weight = torch.tensor(pos_w, dtype=torch.float32)
    best, best_state, best_epoch, bad, history = -1.0, None, 0, 0, []
    stop_rows = prep.val_rows
    if opts.val_rows_for_stopping and len(stop_rows) > opts.val_rows_for_stopping:
        sel = np.random.default_rng(opts.seed + 1).choice(len(stop_rows), opts.val_rows_for_stopping, replace=False)
        stop_rows = stop_rows[np.sort(sel)]
    t0 = time.time()
    for epoch in range(1, opts.epochs + 1):
        model.train()
        perm = tr[np_rng.permutation(len(tr))]
        if opts.rows_per_epoch:
            perm = perm[: opts.rows_per_epoch]
        nb = 0
        total = 0.0
        for a in range(0, len(perm), opts.batch_size):
            idx = np.sort(perm[a:a + opts.batch_size])
            logits = model.forward_logits(*_batch(prep.tensors, idx))
            yt, wt = torch.from_numpy(y[idx]), torch.from_numpy(w[idx])
            loss_el = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, reduction="none",
                                                                           pos_weight=pos_weight)
            loss = ((loss_el * wt).sum(0) / wt.sum(0).clamp(min=1.0)).sum()
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            total += float(loss)
            nb += 1
            if opts.max_batches_per_epoch and nb >= opts.max_batches_per_epoch:
                break
        p = predict(model, prep.tensors, stop_rows)
        m = evaluate_scores(p, prep.purchase[stop_rows], prep.churn[stop_rows], prep.churn_mask[stop_rows])
        sc = _score(m)
        history.append({"epoch": epoch, "train_loss": total / max(1, nb), "val_mean_roc_auc": sc})
        log.info("%s epoch %d loss %.4f val purchase AUC %.4f churn AUC %.4f (%.0fs)", arch, epoch, total / max(1, nb),
                 m["purchase_30m"]["roc_auc"], m["churn_24h"]["roc_auc"], time.time() - t0)
        if sc > best:
            best, best_state, best_epoch, bad = sc, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= opts.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    p = predict(model, prep.tensors, prep.val_rows)
    m = evaluate_scores(p, prep.purchase[prep.val_rows], prep.churn[prep.val_rows], prep.churn_mask[prep.val_rows])
    m["best_epoch"] = best_epoch
    m["epochs_run"] = len(history)
    m["parameters"] = int(sum(x.numel() for x in model.parameters()))
    m["train_seconds"] = round(time.time() - t0, 1)
    m["pos_weight"] = pos_w
    m["history"] = history
    return model, m, p


def train_all(prep: Prepared, opts: TrainOptions, archs=ARCHS, cfg=None):
    torch.set_num_threads(max(1, opts.threads))
    results, models, val_preds = {}, {}, {}
    for arch in archs:
        model, m, p = train_model(arch, prep, opts, cfg)
        results[arch], models[arch], val_preds[arch] = m, model, p
    return models, results, val_preds
