import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # model-export/, so `import seqscore_export` works from a clean clone

from seqscore_export import data as D  # noqa: E402


def taobao_sample():
    return os.path.join(D.default_data_dir(), "taobao", "UserBehavior_sample.csv")


requires_data = pytest.mark.skipif(
    not os.path.exists(taobao_sample()),
    reason=f"shared data not found at {taobao_sample()} (set SEQSCORE_DATA_DIR to the folder holding "
           "taobao/UserBehavior_sample.csv)")


def events_from(tmp_path, records, name="ev.jsonl"):
    """Build a cleaned Events table from canonical dicts (via the canonical JSONL reader)."""
    p = tmp_path / name
    with open(p, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    ev, _ = D.load(str(p), "canonical")
    return ev


# 2017-11-25 00:00 UTC, a whole number of days after the epoch: hand-made times are seconds after it, so that
# they are valid (after 1970) and keep their hour of day.
BASE_MS = 1_511_568_000_000


def ev(user, etype, item, t_s, cat="c1"):
    return {"user_id": user, "event_type": etype, "item_id": item, "category_id": cat,
            "event_time": BASE_MS + int(t_s * 1000), "price": None, "session_id": None}
