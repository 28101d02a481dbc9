"""Metrics (ROC-AUC, PR-AUC, Brier score, calibration error), Platt scaling, score quantiles and the alert
threshold rules, in plain numpy (no sklearn here)."""
from __future__ import annotations

import math

import numpy as np

ECE_BINS = 20
# Alert rates at which score quantiles are stored in the spec (log-spaced, 1e-4 .. 1).
QUANTILE_RATES = [float(f"{x:.3g}") for x in np.logspace(-4, 0, 41)]


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC with average ranks for ties; nan if one class is absent."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    npos = int(y.sum())
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    bounds = np.concatenate([[0], np.nonzero(np.diff(ss))[0] + 1, [len(ss)]])
    avg = (bounds[:-1] + bounds[1:] + 1) / 2.0
    ranks[order] = np.repeat(avg, np.diff(bounds))
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve), ties grouped."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    npos = int(y.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.concatenate([np.nonzero(np.diff(ss))[0], [len(ss) - 1]])  # last index of each tie group
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / npos
    prev = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - prev) * precision))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over equal-mass bins (sorted by score, split into `bins` groups of equal size):
    sum over bins of (bin size / n) * |mean label - mean score|. Equal mass, because with base rates of a few
    percent equal-width bins would put almost every event into the first bin."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n = len(y)
    if n == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for idx in np.array_split(order, min(bins, n)):
        total += len(idx) * abs(y[idx].mean() - p[idx].mean())
    return float(total / n)


def all_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {"roc_auc": roc_auc(y, p), "pr_auc": pr_auc(y, p), "brier": brier(y, p), "ece": ece(y, p),
            "events": int(len(y)), "positives": int(np.asarray(y).sum())}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def logit(p, eps=1e-7):
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def fit_platt(z: np.ndarray, y: np.ndarray, iters: int = 100, monotone: bool = False):
    """(a, b) minimising the log loss of sigmoid(a * z + b) against y: Newton's method with step halving (a tiny
    L2 on a - 1 keeps it defined on separable data). monotone: never reverse the score's order (a >= 0)."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(z) == 0 or y.min() == y.max():
        return 1.0, 0.0
    lam = 1e-6 * len(z)

    def loss(a, b):
        t = a * z + b
        return float(np.sum(np.logaddexp(0.0, t) - y * t) + 0.5 * lam * (a - 1.0) ** 2)

    a, b = 1.0, float(np.log(y.mean() / (1 - y.mean())) - np.mean(z))
    cur = loss(a, b)
    for _ in range(iters):
        p = sigmoid(a * z + b)
        w = p * (1 - p)
        g = np.array([np.dot(p - y, z) + lam * (a - 1.0), np.sum(p - y)])
        H = np.array([[np.dot(w, z * z) + lam, np.dot(w, z)], [np.dot(w, z), np.sum(w) + 1e-9]])
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-6:
            na, nb = a - t * step[0], b - t * step[1]
            nl = loss(na, nb)
            if nl <= cur:
                break
            t /= 2
        if t <= 1e-6 or cur - nl < 1e-12 * max(1.0, abs(cur)):
            a, b, cur = (na, nb, nl) if t > 1e-6 and nl <= cur else (a, b, cur)
            break
        a, b, cur = na, nb, nl
    if monotone and a < 0:
        return 0.0, float(np.log(y.mean() / (1 - y.mean())))
    return float(a), float(b)


def score_quantiles(s: np.ndarray, rates=QUANTILE_RATES) -> list:
    """For each alert rate f: the threshold t with a fraction f of the scores at or above it (the (1 - f) quantile,
    taken as the score of the ceil(f * n)-th highest event)."""
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    n = len(s)
    out = []
    for f in rates:
        k = max(1, int(math.ceil(f * n - 1e-9)))
        out.append(float(np.float32(s[min(k, n) - 1])))
    return out


def alerts_at(y, s, thr, base_s=None):
    """(precision, recall, alert rate) of alerts score >= thr; alert rate over base_s (all events) if given."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    sel = s >= thr
    rate_over = s if base_s is None else np.asarray(base_s, dtype=np.float64)
    return (float(y[sel].mean()) if sel.any() else float("nan"),
            float(y[sel].sum() / max(1, y.sum())),
            float((rate_over >= thr).mean()) if len(rate_over) else float("nan"))


def choose_threshold(rule: dict, y: np.ndarray, s: np.ndarray, all_scores: np.ndarray, min_alerts: int = 50):
    """Applies a threshold rule to out-of-fold scores.

    rule {"kind": "alert_rate", "target": f}: the score at the top fraction f of all events (all_scores: every
    event, labelled or not, since serving scores them all).
    rule {"kind": "precision", "target": p}: the lowest score whose alerts among labelled events (y, s) have
    precision >= p over at least min_alerts alerts; if no score reaches it, the rule falls back to an alert rate of
    1% and says so.
    Returns (threshold, record) where record is what the spec stores."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    kind, target = rule["kind"], float(rule["target"])
    rec = {"kind": kind, "target": target}
    if len(all_scores) == 0:
        rec.update({"used": "default", "note": "no scored events: default 0.5"})
        return 0.5, rec
    if kind == "alert_rate":
        thr = score_quantiles(all_scores, [target])[0]
        rec["used"] = "alert_rate"
    elif kind == "precision":
        thr = None
        if len(s) and y.any():
            order = np.argsort(-s, kind="mergesort")
            ys, ss = y[order], s[order]
            tp = np.cumsum(ys)
            last = np.concatenate([np.nonzero(np.diff(ss))[0], [len(ss) - 1]])
            n = last + 1
            prec = tp[last] / n
            ok = np.nonzero((prec >= target) & (n >= min_alerts))[0]
            if len(ok):
                thr = float(np.float32(ss[last[ok[-1]]]))
        if thr is None:
            thr = score_quantiles(all_scores, [0.01])[0]
            rec["used"] = "fallback_alert_rate_0.01"
            rec["note"] = f"no threshold reaches precision {target} over >= {min_alerts} alerts"
        else:
            rec["used"] = "precision"
        rec["min_alerts"] = min_alerts
    else:
        raise ValueError(f"unknown threshold rule kind {kind!r} (alert_rate or precision)")
    p, r, a = alerts_at(y, s, thr, all_scores)
    rec.update({"oof_precision": p, "oof_recall": r, "oof_alert_rate": a})
    return float(thr), rec
