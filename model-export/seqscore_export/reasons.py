"""Reason groups: named sets of model inputs that the job occludes to explain an alert, and that the model card ranks
by permutation importance. The groups partition the profile features, plus one group for the sequence itself, and
are written into model-spec.json, so that the job and the card use the same definitions.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from . import features as F
from .metrics import roc_auc

SEQUENCE = "sequence"

# (name, title, profile features or prefixes, readable text). {feature} in a text is that feature's readable value as
# the job computes it: a count, a duration, the window length in events, the local clock time, or {event_type}.
# Order matters only for ties.
_GROUPS = [
    ("carts_without_buy", "recent carts without a buy",
     ["carts_without_buy", "count_cart", "recent_cart", "count_remove_from_cart", "recent_remove_from_cart"],
     "carts without a buy in the window: {carts_without_buy}; carts in the last 30 min: {recent_cart}"),
    ("purchase_history", "earlier purchases",
     ["count_buy", "recent_buy", "has_prev_buy", "since_prev_buy"],
     "buys in the window: {count_buy}"),
    ("time_since_previous", "time since the previous visit",
     ["since_prev_event"],
     "{since_prev_event} since the previous event"),
    ("repeat_views", "repeat views of the same item/category",
     ["same_item_count", "same_category_count", "distinct_items", "distinct_categories"],
     "earlier events on this item: {same_item_count}; on its category: {same_category_count}"),
    ("session_length", "session length and activity",
     ["session_events", "window_length", "count_view", "recent_view", "count_fav", "recent_fav"],
     "events in this session: {session_events}; in the window: {window_length}"),
    ("event_type", "this event's type",
     ["is_"],
     "this event is a {event_type}"),
    ("time_of_day", "time of day",
     ["event_hour_sin", "event_hour_cos"],
     "at {event_hour_sin} local time"),
    (SEQUENCE, "the sequence itself (LSTM/Transformer)",
     [],
     "the order and timing of the window's events ({window_length})"),
]


def groups(profile_names: List[str]) -> List[dict]:
    """The groups for a model with these profile features, each with its member features in model order. Groups with
    no member (other than the sequence) are left out; every profile feature is in exactly one group."""
    out = []
    placed = {}
    for name, title, members, text in _GROUPS:
        feats = [p for p in profile_names if any(p == m or (m.endswith("_") and p.startswith(m)) for m in members)]
        for p in feats:
            if p in placed:
                raise ValueError(f"profile feature {p} is in reason groups {placed[p]} and {name}")
            placed[p] = name
        if feats or name == SEQUENCE:
            out.append({"name": name, "title": title, "profile_features": feats, "sequence": name == SEQUENCE,
                        "text": text})
    missing = [p for p in profile_names if p not in placed]
    if missing:
        raise ValueError(f"profile features {missing} are in no reason group: add them to reasons._GROUPS")
    return out


def spec_section(profile_names: List[str], top: int = 3) -> dict:
    """The model-spec.json section the job reads."""
    return {
        "method": "occlusion: each group's inputs replaced by the training mean (0 after standardisation); the "
                  "sequence group keeps only the current event; the drop is the calibrated score minus the "
                  "occluded score",
        "top": top,
        "groups": groups(profile_names),
    }


HISTORY = "history"
HISTORY_TEXT = ("history so far: {life_count_view} views, {life_count_cart} carts and {life_count_buy} buys over "
                "{life_active_days} active days")


def streaming_groups(profile_names: List[str], lifetime_names: List[str]) -> List[dict]:
    """The streaming model's groups: the windowed groups (same profile features, the sequence group) and one
    ``history`` group: the lifetime features and the recurrent state. Every group says whether it is the history."""
    out = [dict(g, history=False) for g in groups(profile_names)]
    text = HISTORY_TEXT
    import re
    if any(ph not in lifetime_names for ph in re.findall(r"\{([a-z_0-9]+)\}", text)):
        text = "the user's history before this event"
    out.append({"name": HISTORY, "title": "the user's history (lifetime record and recurrent state)",
                "profile_features": [], "sequence": False, "history": True,
                "lifetime_features": list(lifetime_names), "text": text})
    return out


def streaming_spec_section(profile_names: List[str], lifetime_names: List[str], top: int = 3) -> dict:
    """The ``streaming.reasons`` section of a format 3 spec."""
    return {
        "method": "occlusion on the step graph with the user's state before the event: each group's profile "
                  "inputs replaced by the training mean (0 after standardisation); the sequence group keeps only "
                  "the current event of the window; the history group sets every lifetime feature to its mean (0) "
                  "and the recurrent state to zeros; the drop is the calibrated score minus the occluded score",
        "top": top,
        "groups": streaming_groups(profile_names, lifetime_names),
    }


def occlude(T: Dict[str, np.ndarray], group: dict, profile_names: List[str]) -> Dict[str, np.ndarray]:
    """A copy of standardised tensors with the group occluded as the job does it (for tests and offline use)."""
    out = {k: v.copy() for k, v in T.items()}
    if group["sequence"]:
        for k in F.INPUT_NAMES:
            if k != "profile":
                out[k][:, :-1] = 0
    else:
        cols = [profile_names.index(p) for p in group["profile_features"]]
        out["profile"][:, cols] = 0.0
    return out


def permutation_importance(predict_logits, T: Dict[str, np.ndarray], rows: np.ndarray, y: np.ndarray,
                           w: np.ndarray, profile_names: List[str], seed: int) -> Dict[str, List[float]]:
    """ROC-AUC drop per group and output when the group's inputs are shuffled jointly across ``rows`` (one
    permutation per group, fixed seed). ``predict_logits(T, rows) -> [R, 2]``. Returns {group: [drop per output]}."""
    base = predict_logits(T, rows)
    base_auc = [_auc(y[rows, j], base[:, j], w[rows, j]) for j in range(2)]
    rng = np.random.default_rng(seed)
    out = {}
    for g in groups(profile_names):
        perm = rows[rng.permutation(len(rows))]
        shuffled = {k: v for k, v in T.items()}
        if g["sequence"]:
            for k in F.INPUT_NAMES:
                if k != "profile":
                    col = T[k].copy()
                    col[rows] = T[k][perm]
                    shuffled[k] = col
        else:
            cols = [profile_names.index(p) for p in g["profile_features"]]
            prof = T["profile"].copy()
            prof[np.ix_(rows, cols)] = T["profile"][np.ix_(perm, cols)]
            shuffled["profile"] = prof
        z = predict_logits(shuffled, rows)
        out[g["name"]] = [base_auc[j] - _auc(y[rows, j], z[:, j], w[rows, j]) for j in range(2)]
    return out


def _auc(y, s, w):
    keep = w > 0
    return roc_auc(y[keep], s[keep])
