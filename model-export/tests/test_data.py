import json

import pytest

from seqscore_export import cli
from seqscore_export import data as D


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


TAOBAO = """1,100,10,pv,1511544070
1,100,10,pv,1511544070
1,101,10,cart,1511544080,extra
1,102,10,pv
,103,10,pv,1511544090
1,,10,pv,1511544090
1,104,10,pv,15115x4090
1,105,10,click,1511544095
1,106,10,buy,1511000000
1,107,10,buy,1512316800

2,108,11,fav,1511600000
2,108,11,cart,1511600000
"""


def test_taobao_every_malformed_case(tmp_path):
    ev, rep = D.load(write(tmp_path, "t.csv", TAOBAO), "taobao")
    c = rep.counts
    assert rep.rows_read == 12  # blank lines are not rows
    assert c["wrong_column_count"] == 2
    assert c["empty_user"] == 1
    assert c["empty_item"] == 1
    assert c["bad_timestamp"] == 1
    assert c["unknown_event_type"] == 1
    assert c["out_of_time_range"] == 2  # before the range, and the exclusive upper bound
    assert c["duplicate"] == 1
    assert rep.kept == len(ev) == 3
    assert list(ev.user) == ["1", "2", "2"]
    assert [ev.vocabulary[t - 1] for t in ev.etype] == ["view", "fav", "cart"]
    assert ev.time_ms[0] == 1511544070000 and ev.raw_time[0] == "1511544070"
    assert "duplicate=1" in rep.summary()


@pytest.mark.parametrize("line,kind", [
    ("1,2,3,pv,+1511544070", "bad_timestamp"),
    ("1,2,3,pv,-5", "bad_timestamp"),
    ("1,2,3,pv, 1511544070 ", None),            # cells are trimmed
    ("1,2,3,pv,1511544070.0", "bad_timestamp"),
    ("1,2,3,pv,99999999999999999999", "bad_timestamp"),
    ("1,2,3,pv,0", "out_of_time_range"),
    ('"1,2,3,pv,1511544070', "bad_quoting"),
    ('"1",2,3,"pv",1511544070', None),
    ('"1,2",3,pv,1511544070', "wrong_column_count"),
    ('" ",2,3,pv,1511544070', "empty_user"),
    ("1,2,3,PV,1511544070", "unknown_event_type"),
])
def test_taobao_cell_rules(tmp_path, line, kind):
    rejected = []
    ev, rep = D.read(write(tmp_path, "t.csv", line + "\n"), "taobao", rejected=rejected)
    if kind is None:
        assert len(ev) == 1 and not rejected
    else:
        assert len(ev) == 0 and rejected[0][1] == kind, rejected


def test_several_files_are_one_input(tmp_path):
    a = write(tmp_path, "a.csv", "1,100,10,pv,1511544070\n2,100,10,pv,1511544070\n")
    b = write(tmp_path, "b.csv", "2,100,10,pv,1511544070\n3,100,10,buy,1511544071\n")
    ev, rep = D.load([a, b], "taobao")
    assert rep.rows_read == 4 and rep.counts["duplicate"] == 1 and len(ev) == 3
    assert list(ev.user) == ["1", "2", "3"]
    assert ev.line(1) == 2 and ev.order[1] >> 32 == 0  # the first file's row was kept


REES = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
2019-10-01 00:00:05 UTC,purchase,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
2019-10-01 00:00:06 UTC,remove_from_cart,44600062,2103807459595387724,,shiseido,,541312140,
2019-10-01 00:00:07,view,1,2,,b,1.0,5,s
2019-10-01 00:00:07 UTC,wishlist,1,2,,b,1.0,5,s
2019-10-01 00:00:07 UTC,view,1,2,,b,abc,5,s
2019-10-01 00:00:07 UTC,view,1,2,,b,1.0,,s
2019-10-01 00:00:07 UTC,view,1,2,b,1.0,5,s
"""


def test_rees46_cases(tmp_path):
    ev, rep = D.load(write(tmp_path, "r.csv", REES), "rees46")
    c = rep.counts
    assert rep.rows_read == 8
    assert (c["bad_timestamp"], c["unknown_event_type"], c["bad_price"], c["empty_user"], c["wrong_column_count"]) \
        == (1, 1, 1, 1, 1)
    assert len(ev) == 3
    assert [ev.vocabulary[t - 1] for t in ev.etype] == ["view", "buy", "remove_from_cart"]
    assert ev.time_ms[0] == 1569888000000
    assert ev.raw_time[1] == "2019-10-01 00:00:05 UTC"
    assert ev.session[0] == "s1" and ev.session[2] is None
    assert ev.price[0] == pytest.approx(35.79)


def test_canonical_csv_and_jsonl(tmp_path):
    csv_text = ("user_id,event_type,item_id,category_id,event_time,price,session_id\n"
                "u1,view,i1,c1,1000,,\n"
                "u1,cart,i1,,2000,9.5,s\n"
                "u1,teleport,i1,c1,3000,,\n"
                "u1,view,i1,c1,12.5,,\n"
                "u1,view,i1,c1\n")
    ev, rep = D.load(write(tmp_path, "c.csv", csv_text), "canonical")
    assert len(ev) == 2 and rep.counts["unknown_event_type"] == 1 and rep.counts["bad_timestamp"] == 1
    assert rep.counts["wrong_column_count"] == 1
    assert ev.cat[1] == "" and ev.price[1] == 9.5
    lines = [json.dumps({"user_id": "u1", "event_type": "buy", "item_id": "i", "category_id": "c", "event_time": 5}),
             "{not json",
             json.dumps([1, 2]),
             json.dumps({"user_id": "", "event_type": "buy", "item_id": "i", "event_time": 5}),
             json.dumps({"user_id": "u2", "event_type": "buy", "item_id": "i", "event_time": "x"}),
             json.dumps({"user_id": "u2", "event_type": "buy", "item_id": "i", "event_time": 7, "price": "p"})]
    ev, rep = D.load(write(tmp_path, "c.jsonl", "\n".join(lines) + "\n"), "canonical")
    assert len(ev) == 1
    assert (rep.counts["bad_json"], rep.counts["empty_user"], rep.counts["bad_timestamp"], rep.counts["bad_price"]) \
        == (2, 1, 1, 1)


def test_empty_and_all_bad_inputs_fail_clearly(tmp_path, capsys):
    empty = write(tmp_path, "empty.csv", "")
    with pytest.raises(D.DataError, match="no valid events"):
        D.load(empty, "taobao")
    bad = write(tmp_path, "bad.csv", "x,y\n,1,2,pv,abc\n")
    with pytest.raises(D.DataError, match="wrong_column_count=1"):
        D.load(bad, "taobao")
    with pytest.raises(D.DataError, match="not found"):
        D.load(str(tmp_path / "missing.csv"), "taobao")
    for path in (empty, bad):
        rc = cli.main(["train", "--quick", "--format", "taobao", "--input", path, "--out", str(tmp_path / "o")])
        assert rc != 0
        assert "error: no valid events" in capsys.readouterr().err
    rc = cli.main(["score", "--format", "taobao", "--input", bad, "--model", str(tmp_path / "o"),
                   "--output", str(tmp_path / "s.csv")])
    assert rc != 0


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "(default: 50)" in out and "--quick" in out and "SEQSCORE_DATA_DIR" in out
