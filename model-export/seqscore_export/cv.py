"""The evaluation harness: K-fold cross-validation by user for the fusion model, every ablation, the logistic
regression baseline and the heuristic, on the same folds; epoch counts and calibration chosen on out-of-fold
predictions; a time-based view (first days -> last days); then the served model trained on every user.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from . import data as D
from . import features as F
from . import labels as L
from . import reasons as R
from . import train as T
from .metrics import all_metrics, brier, ece, fit_platt, roc_auc, pr_auc, sigmoid
from .model import WIDE_ARCHS

log = logging.getLogger("seqscore_export")

OUTPUTS = F.OUTPUT_NAMES
DEEP_ARCHS = ("fusion", "fusion_no_pretrain", "wide_profile", "lstm", "transformer", "profile_mlp")
ALL_MODELS = DEEP_ARCHS + ("logistic", "heuristic")
DESCRIPTIONS = {
    "fusion": "wide & deep: LSTM + Transformer encoder (masked-event pretrained) + profile MLP into an MLP head, "
              "plus a linear path from the profile into each output (the served model)",
    "fusion_no_pretrain": "the fusion model without masked-event pretraining (pretraining ablation)",
    "wide_profile": "wide & deep without the sequence branches: profile MLP + linear path",
    "lstm": "LSTM branch only + MLP head (no linear path)",
    "transformer": "Transformer-encoder branch only + MLP head (no linear path, no pretraining)",
    "profile_mlp": "profile MLP only + MLP head (no linear path)",
    "logistic": "logistic regression on the standardised profile (the LR baseline; L-BFGS, L2)",
    "heuristic": "gradient-free: " + "; ".join(f"{k}: {v}" for k, v in T.HEURISTIC.items()),
}
# The time view retrains these (the served model is added): the cheap ones; the sequence-only ablations, which the
# cross-validation already shows far behind, would double its cost.
TIME_VIEW_MODELS = ("wide_profile", "profile_mlp", "logistic", "heuristic")
# Start of the time-based view's evaluation period: 2017-12-02 00:00 China time (the last two of nine days).
TIME_SPLIT_MS = 1512144000 * 1000


def arch_of(model: str) -> str:
    return "fusion" if model == "fusion_no_pretrain" else model


@dataclass
class Dataset:
    events: D.Events
    constants: dict
    encoder: F.Encoder
    raw: Dict[str, np.ndarray]
    y: np.ndarray          # [n, 2] float32 labels
    w: np.ndarray          # [n, 2] float32 label weights (1, or 0 where a label is undefined)
    users: np.ndarray      # str per event
    data_end_ms: int

    @property
    def profile_names(self) -> List[str]:
        return self.encoder.profile_names

    def __len__(self):
        return len(self.events)


def encode_raw_all(enc: F.Encoder, rows=None) -> Dict[str, np.ndarray]:
    rows = np.arange(len(enc.ev)) if rows is None else rows
    parts = [enc.encode_raw(rows[a:a + F.CHUNK]) for a in range(0, len(rows), F.CHUNK)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_dataset(ev: D.Events, constants: dict) -> Dataset:
    enc = F.Encoder(ev, constants)
    t0 = time.time()
    raw = encode_raw_all(enc)
    log.info("encoded %d windows in %.1fs", len(ev), time.time() - t0)
    buy = constants["event_types"]["vocabulary"].index("buy") + 1
    data_end = int(ev.time_ms.max())
    pu, ch, cm = L.compute_labels(ev.user, ev.etype, ev.time_ms, buy, data_end)
    y = np.stack([pu, ch], 1).astype(np.float32)
    w = np.stack([np.ones_like(cm), cm], 1).astype(np.float32)
    return Dataset(ev, constants, enc, raw, y, w, ev.user.astype(str), data_end)


def assign_folds(users: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold per event: distinct user ids sorted as strings, permuted with numpy default_rng(seed), dealt round-robin
    into k folds."""
    uniq = np.unique(users)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_user = np.empty(len(uniq), dtype=np.int64)
    fold_of_user[perm] = np.arange(len(uniq)) % k
    return fold_of_user[np.searchsorted(uniq, users)]


def standardised(ds: Dataset, stat_rows: np.ndarray):
    seq_feats, prof_feats = F.compute_stats(ds.raw, stat_rows, ds.profile_names)
    return F.standardise(ds.raw, seq_feats, prof_feats), seq_feats, prof_feats


# ---------------------------------------------------------------- pretraining corpus

def build_corpus(ds: Dataset, extra: List[D.Events], constants: dict) -> dict:
    """Every window with at least two events, from the labelled data (already encoded) and from the extra unlabelled
    files. ``owner`` is the Taobao user id of each window ('' for other sources), so that a fold can leave out its
    evaluation users."""
    parts = []

    def add(raw, owner):
        keep = raw["L"] >= 2
        parts.append({"event_type": raw["event_type"][keep].astype(np.int16),
                      "item_bucket": raw["item_bucket"][keep].astype(np.int32),
                      "category_bucket": raw["category_bucket"][keep].astype(np.int32),
                      "seq_raw": raw["seq_raw"][keep].astype(np.float32),
                      "mask": raw["mask"][keep].astype(np.float32),
                      "owner": owner[keep]})

    add(ds.raw, ds.users.astype(object))
    for ev, is_taobao in extra:
        enc = F.Encoder(ev, constants)
        raw = encode_raw_all(enc)
        owner = ev.user.astype(str).astype(object) if is_taobao else np.full(len(ev), "", dtype=object)
        add(raw, owner)
    corpus = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    log.info("pretraining corpus: %d windows with >= 2 events", len(corpus["mask"]))
    return corpus


def load_extra(paths_formats, vocabulary, exclude_paths=()) -> List[tuple]:
    """The unlabelled pretraining files that exist and are not training inputs: [(events, is_taobao)]."""
    out = []
    ex = {os.path.abspath(p) for p in exclude_paths}
    for path, fmt in paths_formats:
        if os.path.abspath(path) in ex or not os.path.exists(path):
            continue
        ev, rep = D.load(path, fmt, vocabulary)
        log.info("pretraining data %s: %s", path, rep.summary())
        out.append((ev, fmt == "taobao"))
    return out


# ---------------------------------------------------------------- metrics helpers

def fold_metrics(y, w, p, z_raw=None, rank=None) -> dict:
    """Per-output metrics on one fold: calibrated probabilities p, and (if given) uncalibrated sigmoid(z_raw).
    rank, if given, is the score whose order ROC-AUC and PR-AUC judge (the heuristic's own score)."""
    out = {}
    for j, o in enumerate(OUTPUTS):
        m = w[:, j] > 0
        r = all_metrics(y[m, j], p[m, j])
        if rank is not None:
            r["roc_auc"], r["pr_auc"] = roc_auc(y[m, j], rank[m, j]), pr_auc(y[m, j], rank[m, j])
        if z_raw is not None:
            pr = sigmoid(z_raw[m, j])
            r["brier_uncalibrated"] = brier(y[m, j], pr)
            r["ece_uncalibrated"] = ece(y[m, j], pr)
        out[o] = r
    return out


def summarise_folds(per_fold: List[dict]) -> dict:
    out = {}
    for o in OUTPUTS:
        out[o] = {}
        for key in per_fold[0][o]:
            vals = np.array([f[o][key] for f in per_fold], dtype=np.float64)
            if key in ("events", "positives"):
                out[o][key] = int(vals.sum())
                continue
            ok = vals[~np.isnan(vals)]
            out[o][key] = {"mean": float(ok.mean()) if len(ok) else float("nan"),
                           "sd": float(ok.std(ddof=1)) if len(ok) > 1 else float("nan"),
                           "folds": [float(v) for v in vals]}
    return out


def bootstrap_sd(y, s, groups, n=100, seed=0, fn=roc_auc) -> float:
    """sd of fn over resamples of the groups (users) with replacement."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    idx_by = [np.nonzero(inv == g)[0] for g in range(len(uniq))]
    vals = []
    for _ in range(n):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([idx_by[g] for g in pick])
        v = fn(y[idx], s[idx])
        if v == v:
            vals.append(v)
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")


# ---------------------------------------------------------------- the harness

@dataclass
class CVResult:
    models: Dict[str, dict]
    folds: np.ndarray
    oof_logits: Dict[str, np.ndarray]     # at the chosen epoch, raw
    oof_probs: Dict[str, np.ndarray]      # cross-fitted calibrated
    calibration: Dict[str, list]          # Platt (a, b) per output fitted on all out-of-fold logits
    epochs: Dict[str, int]
    pretraining: List[dict]
    # per candidate served model: [fold][epoch] -> state_dict, for the permutation importance of the served model
    snapshots: Dict[str, List[Dict[int, dict]]]
    # per fold: the pretrained embed + encoder state (None without pretraining), which the streaming model reuses
    seq_inits: Optional[List[Optional[dict]]] = None


def run_cv(ds: Dataset, opts: T.TrainOptions, models, cfg: dict, corpus: Optional[dict]) -> CVResult:
    n, k = len(ds), opts.folds
    folds = assign_folds(ds.users, k, opts.seed)
    if len(np.unique(folds)) < k:
        raise D.DataError(f"{len(np.unique(ds.users))} users cannot fill {k} folds")
    deep = [m for m in models if m in DEEP_ARCHS]
    max_e = opts.epochs
    # per model: [epoch] -> [n, 2] out-of-fold logits (NaN until filled)
    per_epoch = {m: {e: np.full((n, 2), np.nan) for e in range(0 if arch_of(m) in WIDE_ARCHS else 1, max_e + 1)}
                 for m in deep}
    lin = np.full((n, 2), np.nan)
    heur = np.full((n, 2), np.nan)
    heur_rank = np.full((n, 2), np.nan)
    seconds = {m: 0.0 for m in models}
    params = {}
    pre_reports = []
    snapshots = {m: [{} for _ in range(k)] for m in deep if arch_of(m) == "fusion"}
    seq_inits = []
    for f in range(k):
        tr, va = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        Tf, seq_feats, prof_feats = standardised(ds, tr)
        P = len(prof_feats)
        t0 = time.time()
        coef, bias = T.fit_logistic(Tf, ds.y, ds.w, tr, opts.logistic_l2, P)
        lm = T.logistic_model(ds.constants, P, cfg, coef, bias)
        lin[va] = T.predict_logits(lm, Tf, va)
        seconds["logistic"] = seconds.get("logistic", 0) + time.time() - t0
        params["logistic"] = int(sum(x.numel() for x in lm.parameters()))
        hs = T.heuristic_scores(ds.raw["profile_raw"], ds.profile_names)
        ab = T.platt_transform(hs, ds.y, ds.w, tr)
        heur[va] = np.stack([ab[j][0] * hs[va, j] + ab[j][1] for j in range(2)], 1)  # calibrated logits
        heur_rank[va] = hs[va]
        log.info("fold %d/%d: %d train users, %d eval users; logistic AUC %.4f / %.4f", f + 1, k,
                 len(np.unique(ds.users[tr])), len(np.unique(ds.users[va])),
                 roc_auc(ds.y[va, 0], lin[va, 0]), roc_auc(ds.y[va][ds.w[va, 1] > 0, 1],
                                                            lin[va][ds.w[va, 1] > 0, 1]))
        seed = opts.seed + 1000 * f
        seq_init = None
        if "fusion" in deep and corpus is not None:
            eval_users = set(np.unique(ds.users[va]).tolist())
            rows = np.nonzero([o not in eval_users for o in corpus["owner"]])[0]
            pm = T.build_seq_model(ds.constants, P, cfg, seed)
            rep = T.pretrain(pm, corpus, seq_feats, rows, opts, seed + 7)
            rep["fold"] = f
            pre_reports.append(rep)
            seq_init = T.seq_state(pm)
            seconds["fusion"] += rep["seconds"]
        seq_inits.append(seq_init)
        for m in deep:
            arch = arch_of(m)

            def on_epoch(e, model, m=m, f=f):
                per_epoch[m][e][va] = T.predict_logits(model, Tf, va)
                if m in snapshots:
                    snapshots[m][f][e] = copy.deepcopy(model.state_dict())

            model, hist, secs = T.fit_deep(arch, ds.constants, P, cfg, Tf, ds.y, ds.w, tr, opts, max_e, seed,
                                           wide_init=(coef, bias), seq_init=seq_init if m == "fusion" else None,
                                           on_epoch=on_epoch)
            seconds[m] += secs
            params[m] = int(sum(x.numel() for x in model.parameters()))
            z = per_epoch[m][max_e][va]
            log.info("fold %d %s: %.0fs, last-epoch AUC %.4f / %.4f", f + 1, m, secs,
                     roc_auc(ds.y[va, 0], z[:, 0]), roc_auc(ds.y[va][ds.w[va, 1] > 0, 1], z[ds.w[va, 1] > 0, 1]))
    # epoch choice on the out-of-fold metric: mean over folds of the mean ROC-AUC of both outputs
    chosen, curves = {}, {}
    for m in deep:
        curve = []
        for e, z in per_epoch[m].items():
            vals = [T.mean_auc(z[folds == f], ds.y[folds == f], ds.w[folds == f]) for f in range(k)]
            curve.append({"epoch": e, "mean_auc": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1))})
        curves[m] = curve
        chosen[m] = max(curve, key=lambda c: (c["mean_auc"], -c["epoch"]))["epoch"]
    raw = {m: per_epoch[m][chosen[m]] for m in deep}
    raw["logistic"] = lin
    raw["heuristic"] = heur
    # calibration: Platt per output, cross-fitted for the reported metrics, on all folds for the served model
    probs, calib, results = {}, {}, {}
    for m in [x for x in models if x in raw]:
        z = raw[m]
        p = np.zeros_like(z)
        if m == "heuristic":  # already calibrated on each fold's training users (monotone Platt)
            probs[m] = sigmoid(z)
            calib[m] = [(1.0, 0.0), (1.0, 0.0)]
            per_fold = [fold_metrics(ds.y[folds == f], ds.w[folds == f], probs[m][folds == f],
                                     rank=heur_rank[folds == f]) for f in range(k)]
            results[m] = {"description": DESCRIPTIONS[m], "cv": summarise_folds(per_fold), "epochs": None,
                          "parameters": 0, "calibration": "monotone Platt scaling fitted on each fold's training users"}
            continue
        for f in range(k):
            tr_m, va_m = folds != f, folds == f
            for j in range(2):
                mm = tr_m & (ds.w[:, j] > 0)
                a, b = fit_platt(z[mm, j], ds.y[mm, j])
                p[va_m, j] = sigmoid(a * z[va_m, j] + b)
        probs[m] = p
        calib[m] = [fit_platt(z[ds.w[:, j] > 0, j], ds.y[ds.w[:, j] > 0, j]) for j in range(2)]
        per_fold = [fold_metrics(ds.y[folds == f], ds.w[folds == f], p[folds == f], z[folds == f])
                    for f in range(k)]
        results[m] = {"description": DESCRIPTIONS[m], "cv": summarise_folds(per_fold),
                      "epochs": chosen.get(m), "epoch_curve": curves.get(m),
                      "parameters": params.get(m, 0), "train_seconds_all_folds": round(seconds.get(m, 0.0), 1),
                      "calibration": {o: {"a": calib[m][j][0], "b": calib[m][j][1]} for j, o in enumerate(OUTPUTS)}}
    return CVResult(results, folds, raw, probs, calib, chosen, pre_reports, snapshots, seq_inits)


def importance(ds: Dataset, cfg: dict, cv: CVResult, served: str, seed: int) -> dict:
    """Permutation importance of the reason groups for the served model, out of fold: each fold's model at the
    chosen epoch, on that fold's evaluation users, one joint shuffle per group; mean and sd over the folds of the
    ROC-AUC drop per output."""
    if served not in cv.snapshots:
        return {"skipped": f"no snapshots of {served}"}
    t0 = time.time()
    k = int(cv.folds.max()) + 1
    epoch = cv.epochs[served]
    per_fold = []
    for f in range(k):
        tr, va = np.nonzero(cv.folds != f)[0], np.nonzero(cv.folds == f)[0]
        Tf, _, prof_feats = standardised(ds, tr)
        model = T.build(arch_of(served), ds.constants, len(prof_feats), cfg)
        model.load_state_dict(cv.snapshots[served][f][epoch])
        per_fold.append(R.permutation_importance(lambda Tx, rows: T.predict_logits(model, Tx, rows), Tf, va,
                                                 ds.y, ds.w, ds.profile_names, seed + f))
    groups = {}
    for g in per_fold[0]:
        groups[g] = {o: {"mean": float(np.mean([pf[g][j] for pf in per_fold])),
                         "sd": float(np.std([pf[g][j] for pf in per_fold], ddof=1)) if k > 1 else float("nan")}
                     for j, o in enumerate(OUTPUTS)}
    return {"method": "permutation importance, out of fold: ROC-AUC drop when a reason group's inputs are shuffled "
                      "jointly across a fold's evaluation events, with that fold's model at the chosen epoch; mean "
                      "and sd over the folds",
            "model": served, "epoch": epoch, "groups": groups, "seconds": round(time.time() - t0, 1)}


def compare(models: Dict[str, dict], target: str = "fusion") -> dict:
    """Does `target` beat each other model on ROC-AUC by more than one fold-sd? The sd used is the larger of the two
    models' fold sds; the paired per-fold differences are reported too."""
    out = {}
    t = models[target]["cv"]
    for o in OUTPUTS:
        rows = {}
        for m, r in models.items():
            if m == target:
                continue
            a, b = t[o]["roc_auc"], r["cv"][o]["roc_auc"]
            diffs = np.array(a["folds"]) - np.array(b["folds"])
            sd = max(a["sd"], b["sd"])
            rows[m] = {"diff": float(a["mean"] - b["mean"]), "fold_sd": float(sd),
                       "paired_diff_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan"),
                       "folds_won": int((diffs > 0).sum()), "beats_by_one_sd": bool(a["mean"] - b["mean"] > sd)}
        out[o] = rows
    return out


# ---------------------------------------------------------------- time-based view

def time_view(ds: Dataset, opts: T.TrainOptions, models, cfg, cv: CVResult, corpus: Optional[dict], served: str,
              split_ms: int = TIME_SPLIT_MS) -> dict:
    """Train on events before split_ms (labels from that period only: purchase needs 30 min and churn 24 h of
    observation before split_ms), evaluate on events from split_ms on (the usual churn mask), every model with the
    epoch count and calibration chosen by cross-validation."""
    models = [m for m in models if m == served or m in TIME_VIEW_MODELS]
    t = ds.events.time_ms
    tr = np.nonzero(t < split_ms)[0]
    ev_rows = np.nonzero(t >= split_ms)[0]
    if len(tr) == 0 or len(ev_rows) == 0:
        return {"skipped": "the data does not span the split time"}
    sub = ds.events.take(tr)
    buy = ds.constants["event_types"]["vocabulary"].index("buy") + 1
    pu, ch, _ = L.compute_labels(sub.user, sub.etype, sub.time_ms, buy, split_ms)
    y, w = ds.y.copy(), ds.w.copy()
    y[tr, 0], y[tr, 1] = pu, ch
    w[tr, 0] = (t[tr] <= split_ms - L.PURCHASE_WINDOW_MS).astype(np.float32)
    w[tr, 1] = (t[tr] <= split_ms - L.CHURN_WINDOW_MS).astype(np.float32)
    Tt, seq_feats, prof_feats = standardised(ds, tr)
    P = len(prof_feats)
    coef, bias = T.fit_logistic(Tt, y, w, tr, opts.logistic_l2, P)
    z = {"logistic": T.predict_logits(T.logistic_model(ds.constants, P, cfg, coef, bias), Tt, ev_rows)}
    hs = T.heuristic_scores(ds.raw["profile_raw"], ds.profile_names)
    ab = T.platt_transform(hs, y, w, tr)
    seed = opts.seed + 99_000
    seq_init = None
    for m in models:
        if m not in DEEP_ARCHS:
            continue
        if m == "fusion" and corpus is not None:
            rows = np.nonzero(_corpus_before(corpus, ds, split_ms))[0]
            pm = T.build_seq_model(ds.constants, P, cfg, seed)
            T.pretrain(pm, corpus, seq_feats, rows, opts, seed + 7)
            seq_init = T.seq_state(pm)
        model, _, _ = T.fit_deep(arch_of(m), ds.constants, P, cfg, Tt, y, w, tr, opts, cv.epochs[m], seed,
                                 wide_init=(coef, bias), seq_init=seq_init if m == "fusion" else None)
        z[m] = T.predict_logits(model, Tt, ev_rows)
    out = {"train": f"events before {split_ms} ms (2017-12-02 00:00 +08:00): {len(tr)} events",
           "evaluate": f"events from then on: {len(ev_rows)} events", "models": {}}
    users = ds.users[ev_rows]
    for m in models:
        if m == "heuristic":
            p = np.stack([sigmoid(ab[j][0] * hs[ev_rows, j] + ab[j][1]) for j in range(2)], 1)
        elif m in z:
            p = np.stack([sigmoid(cv.calibration[m][j][0] * z[m][:, j] + cv.calibration[m][j][1])
                          for j in range(2)], 1)
        else:
            continue
        r = {}
        rank = hs[ev_rows] if m == "heuristic" else p
        for j, o in enumerate(OUTPUTS):
            mm = ds.w[ev_rows, j] > 0
            r[o] = all_metrics(ds.y[ev_rows][mm, j], p[mm, j])
            r[o]["roc_auc"] = roc_auc(ds.y[ev_rows][mm, j], rank[mm, j])
            r[o]["pr_auc"] = pr_auc(ds.y[ev_rows][mm, j], rank[mm, j])
            r[o]["roc_auc_sd_bootstrap_users"] = bootstrap_sd(ds.y[ev_rows][mm, j], rank[mm, j], users[mm])
        out["models"][m] = r
    return out


def _corpus_before(corpus, ds: Dataset, split_ms: int) -> np.ndarray:
    """Corpus windows usable for pretraining before the split: the labelled data's windows (the corpus's first rows,
    in event order) that end before split_ms, and every window of the other sources (other days or datasets)."""
    lab = ds.raw["L"] >= 2
    keep = np.ones(len(corpus["mask"]), dtype=bool)
    keep[:int(lab.sum())] = ds.events.time_ms[lab] < split_ms
    return keep


# ---------------------------------------------------------------- the served model

def fit_final(ds: Dataset, opts: T.TrainOptions, cfg: dict, cv: CVResult, served: str, corpus: Optional[dict]):
    """The served model on every user: normalisation on all events, the logistic regression as its wide start,
    pretraining on the whole corpus (if the served variant uses it), the cross-validated epoch count, and the Platt
    scaling fitted on all out-of-fold logits baked into its forward()."""
    rows = np.arange(len(ds))
    Ta, seq_feats, prof_feats = standardised(ds, rows)
    P = len(prof_feats)
    coef, bias = T.fit_logistic(Ta, ds.y, ds.w, rows, opts.logistic_l2, P)
    seed = opts.seed + 77_000
    seq_init, pre = None, None
    if served == "fusion" and corpus is not None:
        pm = T.build_seq_model(ds.constants, P, cfg, seed)
        pre = T.pretrain(pm, corpus, seq_feats, np.arange(len(corpus["mask"])), opts, seed + 7)
        seq_init = T.seq_state(pm)
    model, hist, secs = T.fit_deep(arch_of(served), ds.constants, P, cfg, Ta, ds.y, ds.w, rows, opts,
                                   cv.epochs[served], seed, wide_init=(coef, bias), seq_init=seq_init)
    with torch.no_grad():
        model.calib_a.copy_(torch.tensor([cv.calibration[served][j][0] for j in range(2)], dtype=torch.float32))
        model.calib_b.copy_(torch.tensor([cv.calibration[served][j][1] for j in range(2)], dtype=torch.float32))
    model.eval()
    return model, Ta, seq_feats, prof_feats, {"history": hist, "seconds": round(secs, 1), "pretraining": pre,
                                              "seq_init": seq_init}
