"""ROC-AUC, PR-AUC (average precision) and threshold rules in plain numpy (no sklearn needed)."""
from __future__ import annotations

import numpy as np


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
    # average ranks over ties
    bounds = np.concatenate([[0], np.nonzero(np.diff(ss))[0] + 1, [len(ss)]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        ranks[order[a:b]] = (a + b + 1) / 2.0
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


def choose_threshold(y: np.ndarray, s: np.ndarray, min_precision=0.5, min_alerts=20, top_fraction=0.01):
    """Lowest score threshold whose alerts (score >= threshold) have precision >= min_precision with at least
    min_alerts alerts; otherwise the score of the top `top_fraction` of events."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    if len(s) == 0:  # e.g. data shorter than the churn horizon: no labelled validation event
        return 0.5, {"rule": "no labelled validation events: default 0.5", "fallback": "none", "used": "default",
                     "validation_precision": float("nan"), "validation_recall": float("nan"),
                     "validation_alert_rate": float("nan")}
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    n = np.arange(1, len(ys) + 1)
    last = np.concatenate([np.nonzero(np.diff(ss))[0], [len(ss) - 1]])
    prec = tp[last] / n[last]
    ok = np.nonzero((prec >= min_precision) & (n[last] >= min_alerts))[0]
    rule_p = f"lowest validation score with precision >= {min_precision} over >= {min_alerts} alerts"
    if len(ok):
        i = last[ok[-1]]
        thr = float(ss[i])
        return thr, {"rule": rule_p, "fallback": f"score at the top {top_fraction:.0%} of validation events",
                     "used": "precision", "validation_precision": float(prec[ok[-1]]),
                     "validation_recall": float(tp[i] / max(1, ys.sum())), "validation_alert_rate": float((i + 1) / len(ys))}
    k = max(1, int(np.ceil(top_fraction * len(ss))))
    thr = float(ss[k - 1])
    sel = s >= thr
    return thr, {"rule": rule_p, "fallback": f"score at the top {top_fraction:.0%} of validation events",
                 "used": "top_fraction", "validation_precision": float(y[sel].mean()) if sel.any() else float("nan"),
                 "validation_recall": float(y[sel].sum() / max(1, y.sum())), "validation_alert_rate": float(sel.mean())}
