"""Reason groups: a partition of the profile features, occlusion as the job does it, and permutation importance
that finds the one group a model uses."""
import numpy as np
import pytest

from seqscore_export import data as D
from seqscore_export import features as F
from seqscore_export import reasons as R

NAMES = F.profile_feature_names(D.DEFAULT_VOCABULARY)


def test_groups_partition_every_profile_feature_once():
    groups = R.groups(NAMES)
    members = [p for g in groups for p in g["profile_features"]]
    assert sorted(members) == sorted(NAMES)
    assert [g["name"] for g in groups][-1] == R.SEQUENCE
    assert all(g["profile_features"] for g in groups if not g["sequence"])


def test_a_feature_in_no_group_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="reasons._GROUPS"):
        R.groups(NAMES + ["brand_new_feature"])


def test_text_placeholders_name_profile_features_or_the_event_type():
    import re
    for g in R.groups(NAMES):
        for ph in re.findall(r"\{([a-z_0-9]+)\}", g["text"]):
            assert ph in NAMES or ph == "event_type", (g["name"], ph)


def tensors(rows, n=4, p=len(NAMES), seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, n), np.float32)
    for r in range(rows):
        mask[r, n - 1 - r % n:] = 1
    return {"event_type": (rng.integers(1, 4, (rows, n)) * mask).astype(np.int64),
            "item_bucket": (rng.integers(1, 9, (rows, n)) * mask).astype(np.int64),
            "category_bucket": (rng.integers(1, 9, (rows, n)) * mask).astype(np.int64),
            "seq_numeric": (rng.normal(size=(rows, n, 6)) * mask[..., None]).astype(np.float32),
            "mask": mask,
            "profile": rng.normal(size=(rows, p)).astype(np.float32)}


def test_occlusion_zeroes_the_group_or_keeps_only_the_current_event():
    T = tensors(8)
    g = {x["name"]: x for x in R.groups(NAMES)}
    carts = R.occlude(T, g["carts_without_buy"], NAMES)
    cols = [NAMES.index(p) for p in g["carts_without_buy"]["profile_features"]]
    other = [c for c in range(len(NAMES)) if c not in cols]
    assert (carts["profile"][:, cols] == 0).all()
    np.testing.assert_array_equal(carts["profile"][:, other], T["profile"][:, other])
    seq = R.occlude(T, g[R.SEQUENCE], NAMES)
    assert (seq["mask"][:, :-1] == 0).all() and (seq["mask"][:, -1] == 1).all()
    np.testing.assert_array_equal(seq["seq_numeric"][:, -1], T["seq_numeric"][:, -1])
    np.testing.assert_array_equal(seq["profile"], T["profile"])


def test_permutation_importance_finds_the_group_the_model_uses():
    T = tensors(400, seed=1)
    col = NAMES.index("since_prev_event")
    y = np.stack([T["profile"][:, col] > 0, T["profile"][:, col] < 0.5], 1).astype(np.float32)
    w = np.ones_like(y)

    def predict(Tx, rows):
        z = Tx["profile"][rows, col]
        return np.stack([z, -z], 1)

    imp = R.permutation_importance(predict, T, np.arange(400), y, w, NAMES, seed=3)
    assert imp["time_since_previous"][0] > 0.3 and imp["time_since_previous"][1] > 0.3
    for name, drops in imp.items():
        if name != "time_since_previous":
            assert drops == [0.0, 0.0], name
