import numpy as np

from conftest import BASE_MS, ev, events_from
from seqscore_export import labels as L


def lab(tmp_path, recs, end=None):
    e = events_from(tmp_path, recs)
    return L.compute_labels(e.user, e.etype, e.time_ms, 4, end)


def test_purchase_window_is_half_open(tmp_path):
    recs = [ev("u", "view", "A", 0), ev("u", "view", "A", 1), ev("u", "buy", "A", 1800), ev("u", "view", "B", 1801),
            ev("v", "view", "A", 0)]
    p, _, _ = lab(tmp_path, recs)
    # t=0: buy at 1800 is in (0, 1800]; t=1: also; the buy itself: no later buy; other user: no buy
    assert p.tolist() == [1, 1, 0, 0, 0]


def test_buy_at_same_second_is_not_future(tmp_path):
    recs = [ev("u", "view", "A", 100), ev("u", "buy", "A", 100)]
    p, _, _ = lab(tmp_path, recs)
    assert p.tolist() == [0, 0]


def test_churn_and_mask(tmp_path):
    D = 86400
    recs = [ev("u", "view", "A", 0), ev("u", "view", "A", D), ev("u", "view", "A", 3 * D), ev("v", "view", "A", 10),
            ev("v", "view", "A", 3 * D + 50)]
    p, c, m = lab(tmp_path, recs)
    # end = 3D + 50 -> defined for t <= 2D + 50
    assert c.tolist() == [0, 1, 1, 1, 1]
    assert m.tolist() == [1, 1, 0, 1, 0]
    _, c2, m2 = lab(tmp_path, recs, end=BASE_MS + 10 * D * 1000)
    assert m2.tolist() == [1, 1, 1, 1, 1]


def test_churn_other_users_do_not_count(tmp_path):
    recs = [ev("u", "view", "A", 0), ev("v", "view", "A", 5), ev("u", "view", "A", 3 * 86400)]
    _, c, m = lab(tmp_path, recs)
    # sorted order: u@0, u@3D, v@5
    assert c.tolist() == [1, 1, 1]
    assert m.tolist() == [1, 0, 1]
