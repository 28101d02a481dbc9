"""Cross-validation of the streaming model (format 3) on the windowed harness's folds, beside the baselines that see
the same inputs: logistic regression and gradient-boosted trees on the window's profile alone and on the profile +
the lifetime features; the streaming model without lifetime memory; and the 'rebuilt' view (recurrent state zeroed,
and the lifetime record rebuilt from the window, at the time split)."""
from __future__ import annotations

import copy
import logging
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from . import cv as CV
from . import lifetime as LT
from . import streaming as S
from . import train as T
from .metrics import fit_platt, roc_auc, sigmoid

log = logging.getLogger("seqscore_export")
OUTPUTS = CV.OUTPUTS

STREAM_VARIANTS = {
    "streaming": {},
    "streaming_no_memory": {"use_state": False, "use_lifetime": False},
    "streaming_no_state": {"use_state": False},
}
DESCRIPTIONS = {
    "streaming": "the streaming fusion model (served with --scoring incremental): attention read-out at the newest "
                 "window position (masked-event pretrained encoder layer) + LSTM over the user's whole history with "
                 "the lifetime features as input + profile MLP over profile and lifetime features, into an MLP "
                 "head, plus a linear path from profile + lifetime",
    "streaming_no_memory": "ablation: the streaming model without lifetime memory (recurrent state reset at every "
                           "event and the lifetime features zeroed): it sees the window only",
    "streaming_no_state": "ablation: the streaming model with its lifetime features but without the recurrent state "
                          "(reset at every event): what the LSTM's memory adds beyond the lifetime record",
    "logistic_lifetime": "logistic regression on the standardised profile + the 10 lifetime features (L-BFGS, L2)",
    "gbt": "gradient-boosted trees (sklearn HistGradientBoostingClassifier, one per output: learning rate 0.05, 150 "
           "iterations, 15 leaves, at least 200 events a leaf, L2 1.0) on the raw window profile",
    "gbt_lifetime": "gradient-boosted trees as gbt on the raw window profile + the raw lifetime features",
}
ORDER = ("streaming", "streaming_no_memory", "streaming_no_state", "logistic_lifetime", "gbt", "gbt_lifetime")


# Regularised trees: sklearn's defaults (learning rate 0.1, 31 leaves, early stopping on a random 10 % of the training
# rows, i.e. on the training users themselves) fit the training users and ranked clearly worse out of fold (ROC-AUC
# 0.630 / 0.739 against 0.652 / 0.755 with these, window + lifetime, 5 folds), so the baseline is the stronger one.
GBT_PARAMS = {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 200, "l2_regularization": 1.0,
              "max_iter": 150, "early_stopping": False}


def fit_gbt(X: np.ndarray, y: np.ndarray, w: np.ndarray, rows: np.ndarray, seed: int):
    """One HistGradientBoostingClassifier per output (GBT_PARAMS), one thread."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    models = []
    for j in range(2):
        r = rows[w[rows, j] > 0]
        clf = HistGradientBoostingClassifier(random_state=seed + j, **GBT_PARAMS)
        if len(np.unique(y[r, j])) < 2:
            models.append(float(y[r, j].mean()) if len(r) else 0.0)
            continue
        if threadpool_limits is not None:
            with threadpool_limits(1):
                clf.fit(X[r], y[r, j])
        else:
            clf.fit(X[r], y[r, j])
        models.append(clf)
    return models


def gbt_logits(models, X: np.ndarray) -> np.ndarray:
    out = np.zeros((len(X), 2))
    for j, m in enumerate(models):
        if isinstance(m, float):
            out[:, j] = np.log(max(m, 1e-6) / max(1 - m, 1e-6))
        else:
            out[:, j] = m.decision_function(X)
    return out


def _scored(ds, folds, z, m, k, chosen=None, curves=None, params=0, seconds=0.0):
    p = np.zeros_like(z)
    for f in range(k):
        tr_m, va_m = folds != f, folds == f
        for j in range(2):
            mm = tr_m & (ds.w[:, j] > 0)
            a, b = fit_platt(z[mm, j], ds.y[mm, j])
            p[va_m, j] = sigmoid(a * z[va_m, j] + b)
    calib = [fit_platt(z[ds.w[:, j] > 0, j], ds.y[ds.w[:, j] > 0, j]) for j in range(2)]
    per_fold = [CV.fold_metrics(ds.y[folds == f], ds.w[folds == f], p[folds == f], z[folds == f]) for f in range(k)]
    res = {"description": DESCRIPTIONS[m], "cv": CV.summarise_folds(per_fold), "epochs": chosen,
           "epoch_curve": curves, "parameters": params, "train_seconds_all_folds": round(seconds, 1),
           "calibration": {o: {"a": calib[j][0], "b": calib[j][1]} for j, o in enumerate(OUTPUTS)}}
    return res, p, calib


def rebuild_starts(ds, split_ms: int, rows: np.ndarray, window: bool):
    """For the 'rebuilt' view: (record_start flags, state cut flags) over all events. At each user's first event k at
    or after split_ms the recurrent state restarts at zero; with window=True the lifetime record is also rebuilt
    from only the events of k's window before k (what the job still holds at that time)."""
    n = len(ds)
    t = ds.events.time_ms
    rec = np.zeros(n, dtype=bool)
    cut = np.zeros(n, dtype=bool)
    post = rows[t[rows] >= split_ms]
    if len(post) == 0:
        return rec, cut, post
    u = ds.users
    firsts = post[np.r_[True, u[post[1:]] != u[post[:-1]]]]
    cut[firsts] = True
    if window:
        ws, _ = ds.encoder.window_bounds(firsts)
        rec[ws] = True
    return rec, cut, post


def run_stream_cv(ds, life_raw: np.ndarray, start: np.ndarray, folds: np.ndarray, opts: T.TrainOptions,
                  so: S.StreamOptions, cfg: dict, seq_inits: List[Optional[dict]],
                  variants=tuple(STREAM_VARIANTS), gbt: bool = True, split_ms: int = CV.TIME_SPLIT_MS,
                  fusion_oof: Optional[np.ndarray] = None) -> dict:
    n, k = len(ds), int(folds.max()) + 1
    names = LT.lifetime_feature_names(ds.constants["event_types"]["vocabulary"])
    per_epoch = {m: {e: np.full((n, 2), np.nan) for e in range(0, so.epochs + 1)} for m in variants}
    snapshots = {m: [{} for _ in range(k)] for m in variants}
    lin = np.full((n, 2), np.nan)
    gb = {"gbt": np.full((n, 2), np.nan), "gbt_lifetime": np.full((n, 2), np.nan)}
    seconds = {m: 0.0 for m in list(variants) + ["logistic_lifetime", "gbt", "gbt_lifetime"]}
    params = {}
    life_stats = []
    t_all = time.time()
    for f in range(k):
        tr, va = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        Tf, _, prof_feats = CV.standardised(ds, tr)
        P = len(prof_feats)
        st = LT.compute_stats(life_raw, tr, names)
        life_stats.append(st)
        life = LT.standardise(life_raw, st)
        t0 = time.time()
        X = {"profile": np.concatenate([Tf["profile"], life], 1)}
        coef, bias = T.fit_logistic(X, ds.y, ds.w, tr, opts.logistic_l2, P + len(names))
        lin[va] = X["profile"][va] @ coef.T + bias
        seconds["logistic_lifetime"] += time.time() - t0
        params["logistic_lifetime"] = int(coef.size + bias.size)
        if gbt:
            for m, Xg in (("gbt", ds.raw["profile_raw"]), ("gbt_lifetime", np.concatenate([ds.raw["profile_raw"],
                                                                                          life_raw], 1))):
                t0 = time.time()
                gm = fit_gbt(Xg, ds.y, ds.w, tr, opts.seed + f)
                gb[m][va] = gbt_logits(gm, Xg[va])
                seconds[m] += time.time() - t0
                params[m] = int(sum(g.n_iter_ for g in gm if not isinstance(g, float)))
        log.info("stream fold %d/%d: logistic+lifetime AUC %.4f / %.4f%s", f + 1, k, roc_auc(ds.y[va, 0], lin[va, 0]),
                 roc_auc(ds.y[va][ds.w[va, 1] > 0, 1], lin[va][ds.w[va, 1] > 0, 1]),
                 "" if not gbt else "; gbt+lifetime %.4f / %.4f" % (
                     roc_auc(ds.y[va, 0], gb["gbt_lifetime"][va, 0]),
                     roc_auc(ds.y[va][ds.w[va, 1] > 0, 1], gb["gbt_lifetime"][va][ds.w[va, 1] > 0, 1])))
        va_segs = S.segments(ds.users, start, va)
        seed = opts.seed + 1000 * f + 500
        for m in variants:
            def on_epoch(e, model, m=m, f=f):
                per_epoch[m][e][va] = S.predict_logits(model, Tf, life, va_segs, n)[va]
                snapshots[m][f][e] = copy.deepcopy(model.state_dict())

            vcfg = dict(cfg, **STREAM_VARIANTS[m])
            model, hist, secs = S.fit_streaming(ds.constants, P, len(names), vcfg, Tf, life, start, ds.y, ds.w,
                                                ds.users, tr, so, seed, wide_init=(coef, bias),
                                                seq_init=seq_inits[f] if seq_inits else None, on_epoch=on_epoch)
            seconds[m] += secs
            params[m] = int(sum(x.numel() for x in model.parameters()))
            z = per_epoch[m][so.epochs][va]
            log.info("stream fold %d %s: %.0fs, last-epoch AUC %.4f / %.4f", f + 1, m, secs,
                     roc_auc(ds.y[va, 0], z[:, 0]), roc_auc(ds.y[va][ds.w[va, 1] > 0, 1], z[ds.w[va, 1] > 0, 1]))
    chosen, curves = {}, {}
    for m in variants:
        curve = []
        for e, z in per_epoch[m].items():
            vals = [T.mean_auc(z[folds == f], ds.y[folds == f], ds.w[folds == f]) for f in range(k)]
            per_out = {o: float(np.nanmean([_auc(ds.y[folds == f, j], z[folds == f, j], ds.w[folds == f, j])
                                            for f in range(k)])) for j, o in enumerate(OUTPUTS)}
            curve.append(dict({"epoch": e, "mean_auc": float(np.mean(vals)),
                               "sd": float(np.std(vals, ddof=1)) if k > 1 else float("nan")}, **per_out))
        curves[m] = curve
        chosen[m] = max(curve, key=lambda c: (c["mean_auc"], -c["epoch"]))["epoch"]
    raw = {m: per_epoch[m][chosen[m]] for m in variants}
    raw["logistic_lifetime"] = lin
    if gbt:
        raw.update(gb)
    models, probs, calib = {}, {}, {}
    for m in [x for x in ORDER if x in raw]:
        models[m], probs[m], calib[m] = _scored(ds, folds, raw[m], m, k, chosen.get(m), curves.get(m),
                                                params.get(m, 0), seconds.get(m, 0.0))
    rebuilt = rebuilt_view(ds, life_raw, start, folds, cfg, snapshots["streaming"], chosen["streaming"],
                           raw["streaming"], life_stats, split_ms, fusion_oof) if "streaming" in variants else None
    return {"models": models, "oof_logits": raw, "oof_probs": probs, "calibration": calib, "epochs": chosen,
            "snapshots": snapshots, "rebuilt": rebuilt, "seconds": round(time.time() - t_all, 1)}


def rebuilt_view(ds, life_raw, start, folds, cfg, snaps, epoch, oof, life_stats, split_ms, fusion_oof=None) -> dict:
    """AUC on the held-out users' events from split_ms on, per fold (that fold's model at the chosen epoch): with
    the lifetime state carried over the whole history (as served), with the recurrent state zeroed at the split
    (lifetime record kept), and with the lifetime record also rebuilt from the window at the split."""
    k = int(folds.max()) + 1
    names = LT.lifetime_feature_names(ds.constants["event_types"]["vocabulary"])
    vocab = ds.constants["event_types"]["vocabulary"]
    conds = ("lifetime_state", "state_zeroed", "state_and_record_rebuilt") + (("windowed_fusion",)
                                                                           if fusion_oof is not None else ())
    per = {c: [] for c in conds}
    n_ev = 0
    for f in range(k):
        tr, va = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        rec0, cut, post = rebuild_starts(ds, split_ms, va, window=False)
        if len(post) == 0:
            return {"skipped": "no held-out events after the split"}
        rec1, _, _ = rebuild_starts(ds, split_ms, va, window=True)
        n_ev += len(post)
        Tf, _, prof_feats = CV.standardised(ds, tr)
        model = S.build_streaming(ds.constants, len(prof_feats), len(names), cfg)
        model.load_state_dict(snaps[f][epoch])
        life = LT.standardise(life_raw, life_stats[f])
        z = {"lifetime_state": oof}
        segs = S.segments(ds.users, start | cut, va)
        z["state_zeroed"] = S.predict_logits(model, Tf, life, segs, len(ds))
        lr2, st2 = LT.lifetime_raw(ds.events.user, ds.events.time_ms, ds.events.etype, vocab,
                                   ds.constants["time"]["utc_offset_ms"], LT.RESET_GAP_MS, record_start=rec1)
        life2 = LT.standardise(lr2, life_stats[f])
        z["state_and_record_rebuilt"] = S.predict_logits(model, Tf, life2, S.segments(ds.users, st2 | cut, va),
                                                         len(ds))
        if fusion_oof is not None:
            z["windowed_fusion"] = fusion_oof
        for c in conds:
            per[c].append([_auc(ds.y[post, j], z[c][post, j], ds.w[post, j]) for j in range(2)])
    out = {"method": "out-of-fold (each fold's model at the chosen epoch, its held-out users), on the events at or "
                     "after 2017-12-02 00:00 +08:00: 'lifetime_state' = state and record carried over the whole "
                     "history (as served); 'state_zeroed' = recurrent state zeroed at each user's first event after "
                     "the split (lifetime record kept: a model change); 'state_and_record_rebuilt' = the lifetime "
                     "record also rebuilt from only that event's window (the events the job holds then); "
                     "'windowed_fusion' = the windowed model's out-of-fold scores on the same events",
           "events": int(n_ev), "epoch": epoch, "conditions": {}}
    for c in conds:
        a = np.array(per[c])
        out["conditions"][c] = {o: {"mean": float(np.nanmean(a[:, j])),
                                    "sd": float(np.nanstd(a[:, j], ddof=1)) if k > 1 else float("nan"),
                                    "folds": [float(x) for x in a[:, j]]} for j, o in enumerate(OUTPUTS)}
    return out


def _auc(y, s, w):
    keep = w > 0
    return roc_auc(y[keep], s[keep])


def fit_final_streaming(ds, life_raw, start, opts, so, cfg, epochs: int, calibration, seq_init, Ta, P):
    """The served streaming model on every user: lifetime statistics on all events, the LR on profile + lifetime as
    its wide start, the final pretraining's encoder, the cross-validated epoch count, Platt scaling from the
    out-of-fold logits."""
    names = LT.lifetime_feature_names(ds.constants["event_types"]["vocabulary"])
    rows = np.arange(len(ds))
    stats = LT.compute_stats(life_raw, rows, names)
    life = LT.standardise(life_raw, stats)
    X = {"profile": np.concatenate([Ta["profile"], life], 1)}
    coef, bias = T.fit_logistic(X, ds.y, ds.w, rows, opts.logistic_l2, P + len(names))
    so_final = copy.copy(so)
    so_final.epochs = epochs
    model, hist, secs = S.fit_streaming(ds.constants, P, len(names), cfg, Ta, life, start, ds.y, ds.w, ds.users,
                                        rows, so_final, opts.seed + 77_500, wide_init=(coef, bias),
                                        seq_init=seq_init)
    with torch.no_grad():
        model.calib_a.copy_(torch.tensor([calibration[j][0] for j in range(2)], dtype=torch.float32))
        model.calib_b.copy_(torch.tensor([calibration[j][1] for j in range(2)], dtype=torch.float32))
    model.eval()
    return model, life, stats, {"history": hist, "seconds": round(secs, 1), "epochs": epochs}
