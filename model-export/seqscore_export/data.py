"""Readers for real clickstream logs, mapped onto the canonical event (docs/feature-contract.md).

Every reader returns an :class:`Events` table (columnar numpy arrays) plus a :class:`DropReport`.
Malformed rows are skipped and counted, never raised; an input with no valid row raises
:class:`DataError` (the CLI turns it into a clear message and a non-zero exit).
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

DEFAULT_VOCABULARY = ["view", "cart", "fav", "buy", "remove_from_cart"]

# Taobao UserBehavior: the data's documented range, [2017-11-25 00:00, 2017-12-04 00:00) China time.
TAOBAO_TIME_RANGE_S = (1511539200, 1512316800)

TAOBAO_TYPES = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "buy"}
REES46_TYPES = {"view": "view", "cart": "cart", "purchase": "buy", "remove_from_cart": "remove_from_cart"}

CANONICAL_FIELDS = ["user_id", "event_type", "item_id", "category_id", "event_time", "price", "session_id"]

FORMATS = ("taobao", "rees46", "canonical")

# Drop reasons, in report order.
DROP_REASONS = (
    "wrong_column_count",
    "bad_json",
    "empty_user",
    "empty_item",
    "bad_timestamp",
    "unknown_event_type",
    "bad_price",
    "out_of_time_range",
    "duplicate",
)


class DataError(Exception):
    """Input that cannot be used at all (missing, empty, or no valid row)."""


@dataclass
class DropReport:
    rows_read: int = 0
    counts: "OrderedDict[str, int]" = field(default_factory=lambda: OrderedDict((r, 0) for r in DROP_REASONS))
    kept: int = 0

    def drop(self, reason: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    @property
    def dropped(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"rows_read": self.rows_read, "kept": self.kept, "dropped": dict(self.counts)}

    def summary(self) -> str:
        parts = [f"{k}={v}" for k, v in self.counts.items() if v]
        return (f"read {self.rows_read} rows, kept {self.kept}, dropped {self.dropped}"
                + (f" ({', '.join(parts)})" if parts else ""))


@dataclass
class Events:
    """Canonical events, columnar. After :func:`clean`, sorted by (user_id, event_time, file order)."""
    user: np.ndarray        # object (str)
    etype: np.ndarray       # int64 vocabulary id (1-based)
    item: np.ndarray        # object (str)
    cat: np.ndarray         # object (str, may be "")
    time_ms: np.ndarray     # int64 epoch ms UTC
    price: np.ndarray       # float64, nan = null
    session: np.ndarray     # object (str or None)
    raw_time: np.ndarray    # object (str): the timestamp exactly as in the input
    order: np.ndarray       # int64: row number in the input file (arrival order)
    vocabulary: List[str] = field(default_factory=lambda: list(DEFAULT_VOCABULARY))

    def __len__(self) -> int:
        return len(self.time_ms)

    def take(self, idx) -> "Events":
        return Events(self.user[idx], self.etype[idx], self.item[idx], self.cat[idx], self.time_ms[idx],
                      self.price[idx], self.session[idx], self.raw_time[idx], self.order[idx],
                      list(self.vocabulary))

    def canonical(self, i: int) -> dict:
        p = self.price[i]
        return {
            "user_id": str(self.user[i]),
            "event_type": self.vocabulary[int(self.etype[i]) - 1],
            "item_id": str(self.item[i]),
            "category_id": str(self.cat[i]),
            "event_time": int(self.time_ms[i]),
            "price": None if (p is None or (isinstance(p, float) and math.isnan(p))) else float(p),
            "session_id": None if self.session[i] is None else str(self.session[i]),
        }

    def fingerprint(self) -> str:
        """sha256 over the cleaned events as canonical CSV lines (no header), in cleaned order."""
        h = hashlib.sha256()
        for i in range(len(self)):
            p = self.price[i]
            ps = "" if math.isnan(p) else repr(float(p))
            s = "" if self.session[i] is None else str(self.session[i])
            line = ",".join([str(self.user[i]), self.vocabulary[int(self.etype[i]) - 1], str(self.item[i]),
                             str(self.cat[i]), str(int(self.time_ms[i])), ps, s]) + "\n"
            h.update(line.encode("utf-8"))
        return "sha256:" + h.hexdigest()


class _Builder:
    def __init__(self, vocabulary: List[str]):
        self.vocabulary = list(vocabulary)
        self.type_id = {t: i + 1 for i, t in enumerate(self.vocabulary)}
        self.cols: Dict[str, list] = {k: [] for k in
                                      ("user", "etype", "item", "cat", "time_ms", "price", "session", "raw_time",
                                       "order")}

    def add(self, row_no, user, etype_canon, item, cat, time_ms, price, session, raw_time, report) -> None:
        tid = self.type_id.get(etype_canon)
        if tid is None:
            report.drop("unknown_event_type")
            return
        c = self.cols
        c["user"].append(user)
        c["etype"].append(tid)
        c["item"].append(item)
        c["cat"].append(cat)
        c["time_ms"].append(time_ms)
        c["price"].append(price)
        c["session"].append(session)
        c["raw_time"].append(raw_time)
        c["order"].append(row_no)

    def build(self) -> Events:
        c = self.cols

        def obj(x):
            a = np.empty(len(x), dtype=object)
            a[:] = x
            return a

        return Events(obj(c["user"]), np.asarray(c["etype"], dtype=np.int64), obj(c["item"]), obj(c["cat"]),
                      np.asarray(c["time_ms"], dtype=np.int64), np.asarray(c["price"], dtype=np.float64),
                      obj(c["session"]), obj(c["raw_time"]), np.asarray(c["order"], dtype=np.int64),
                      list(self.vocabulary))


def _parse_int(s: str) -> Optional[int]:
    s = s.strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        return None


def _parse_price(s) -> Tuple[bool, float]:
    if s is None:
        return True, float("nan")
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return True, float(s)
    s = str(s).strip()
    if s == "" or s.lower() == "null":
        return True, float("nan")
    try:
        v = float(s)
    except ValueError:
        return False, float("nan")
    return (not math.isinf(v) and not math.isnan(v)), v


def _open_text(path: str):
    if not os.path.exists(path):
        raise DataError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"input is a directory, expected a file: {path}")
    return open(path, "r", encoding="utf-8", errors="replace", newline="")


def read_taobao(path: str, vocabulary=DEFAULT_VOCABULARY, report: Optional[DropReport] = None) -> Tuple[Events, DropReport]:
    """Taobao UserBehavior CSV, no header: user_id,item_id,category_id,behavior_type,timestamp_seconds."""
    report = report or DropReport()
    b = _Builder(vocabulary)
    with _open_text(path) as f:
        for row_no, row in enumerate(csv.reader(f)):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line: not a row
            report.rows_read += 1
            if len(row) != 5:
                report.drop("wrong_column_count")
                continue
            user, item, cat, btype, ts = (x.strip() for x in row)
            if not user:
                report.drop("empty_user")
                continue
            if not item:
                report.drop("empty_item")
                continue
            sec = _parse_int(ts)
            if sec is None:
                report.drop("bad_timestamp")
                continue
            canon = TAOBAO_TYPES.get(btype)
            if canon is None:
                report.drop("unknown_event_type")
                continue
            b.add(row_no, user, canon, item, cat, sec * 1000, float("nan"), None, ts, report)
    return b.build(), report


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def parse_rees46_time(s: str) -> Optional[int]:
    """'YYYY-MM-DD HH:MM:SS UTC' -> epoch ms; None if malformed."""
    s = s.strip()
    if s.endswith(" UTC"):
        s = s[:-4]
    else:
        return None
    try:
        d = _dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return int((d - _EPOCH).total_seconds()) * 1000


REES46_HEADER = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price",
                 "user_id", "user_session"]


def read_rees46(path: str, vocabulary=DEFAULT_VOCABULARY, report: Optional[DropReport] = None) -> Tuple[Events, DropReport]:
    """REES46 (Open CDP) CSV with header event_time,event_type,product_id,category_id,...,user_id,user_session."""
    report = report or DropReport()
    b = _Builder(vocabulary)
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = None
        for row_no, row in enumerate(reader):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None and [x.strip() for x in row] == REES46_HEADER:
                header = row
                continue
            report.rows_read += 1
            if len(row) != len(REES46_HEADER):
                report.drop("wrong_column_count")
                continue
            ts, etype, item, cat, _code, _brand, price, user, sess = (x.strip() for x in row)
            if not user:
                report.drop("empty_user")
                continue
            if not item:
                report.drop("empty_item")
                continue
            ms = parse_rees46_time(ts)
            if ms is None:
                report.drop("bad_timestamp")
                continue
            canon = REES46_TYPES.get(etype)
            if canon is None:
                report.drop("unknown_event_type")
                continue
            ok, p = _parse_price(price)
            if not ok:
                report.drop("bad_price")
                continue
            b.add(row_no, user, canon, item, cat, ms, p, sess or None, ts, report)
    return b.build(), report


def _canonical_row(b, row_no, rec: dict, report: DropReport) -> None:
    user = "" if rec.get("user_id") is None else str(rec.get("user_id")).strip()
    item = "" if rec.get("item_id") is None else str(rec.get("item_id")).strip()
    cat = "" if rec.get("category_id") is None else str(rec.get("category_id")).strip()
    etype = "" if rec.get("event_type") is None else str(rec.get("event_type")).strip()
    ts = rec.get("event_time")
    sess = rec.get("session_id")
    if not user:
        report.drop("empty_user")
        return
    if not item:
        report.drop("empty_item")
        return
    if isinstance(ts, bool):
        ms = None
    elif isinstance(ts, int):
        ms = ts
    elif isinstance(ts, float):
        ms = int(ts) if ts.is_integer() else None
    else:
        ms = _parse_int("" if ts is None else str(ts))
    if ms is None:
        report.drop("bad_timestamp")
        return
    if etype not in b.type_id:
        report.drop("unknown_event_type")
        return
    ok, p = _parse_price(rec.get("price"))
    if not ok:
        report.drop("bad_price")
        return
    sess = None if sess is None or str(sess).strip() == "" else str(sess)
    raw = str(ts) if not isinstance(ts, str) else ts.strip()
    b.add(row_no, user, etype, item, cat, ms, p, sess, raw, report)


def read_canonical(path: str, vocabulary=DEFAULT_VOCABULARY, report: Optional[DropReport] = None) -> Tuple[Events, DropReport]:
    """Canonical events as CSV (header user_id,event_type,item_id,category_id,event_time,price,session_id)
    or JSONL (one object per line with those keys). JSONL is chosen by a .jsonl/.json suffix or a leading '{'."""
    report = report or DropReport()
    b = _Builder(vocabulary)
    with _open_text(path) as f:
        text_start = f.read(4096)
        f.seek(0)
        is_jsonl = path.endswith((".jsonl", ".json", ".ndjson")) or text_start.lstrip().startswith("{")
        if is_jsonl:
            for row_no, line in enumerate(f):
                if not line.strip():
                    continue
                report.rows_read += 1
                try:
                    rec = json.loads(line)
                except ValueError:
                    report.drop("bad_json")
                    continue
                if not isinstance(rec, dict):
                    report.drop("bad_json")
                    continue
                _canonical_row(b, row_no, rec, report)
        else:
            reader = csv.reader(f)
            header = None
            for row_no, row in enumerate(reader):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    names = [x.strip() for x in row]
                    if "user_id" in names and "event_time" in names:
                        header = names
                        continue
                    header = CANONICAL_FIELDS  # headerless: the documented column order
                report.rows_read += 1
                if len(row) != len(header):
                    report.drop("wrong_column_count")
                    continue
                _canonical_row(b, row_no, dict(zip(header, row)), report)
    return b.build(), report


READERS = {"taobao": read_taobao, "rees46": read_rees46, "canonical": read_canonical}


def default_time_range_ms(fmt: str) -> Optional[Tuple[int, int]]:
    if fmt == "taobao":
        return TAOBAO_TIME_RANGE_S[0] * 1000, TAOBAO_TIME_RANGE_S[1] * 1000
    return None


def clean(ev: Events, report: DropReport, time_range_ms: Optional[Tuple[int, int]] = None) -> Events:
    """Drop rows outside [lo, hi) ms, drop exact duplicates (same user, item, type, event_time; the first in
    file order is kept), and sort by (user_id as a string, event_time, file order)."""
    n = len(ev)
    keep = np.ones(n, dtype=bool)
    if time_range_ms is not None and n:
        lo, hi = time_range_ms
        inr = (ev.time_ms >= lo) & (ev.time_ms < hi)
        report.drop("out_of_time_range", int((~inr).sum()))
        keep &= inr
    ev = ev.take(np.nonzero(keep)[0])
    # sort: user string, time, file order
    if len(ev):
        _, ucode = np.unique(ev.user.astype(str), return_inverse=True)
        order = np.lexsort((ev.order, ev.time_ms, ucode))
        ev = ev.take(order)
        # exact duplicates are adjacent after the sort only if grouped by (user, time); check (item, type) within
        _, icode = np.unique(ev.item.astype(str), return_inverse=True)
        ucode = ucode[order]
        # sort within (user, time) by (item, type, order) to find duplicates
        o2 = np.lexsort((ev.order, ev.etype, icode, ev.time_ms, ucode))
        same = np.zeros(len(ev), dtype=bool)
        same[1:] = ((ucode[o2][1:] == ucode[o2][:-1]) & (ev.time_ms[o2][1:] == ev.time_ms[o2][:-1])
                    & (icode[o2][1:] == icode[o2][:-1]) & (ev.etype[o2][1:] == ev.etype[o2][:-1]))
        dup = np.zeros(len(ev), dtype=bool)
        dup[o2[same]] = True
        report.drop("duplicate", int(dup.sum()))
        ev = ev.take(np.nonzero(~dup)[0])
    report.kept = len(ev)
    return ev


def load(path: str, fmt: str, vocabulary=DEFAULT_VOCABULARY,
         time_range_ms: Optional[Tuple[int, int]] = "default") -> Tuple[Events, DropReport]:
    """Read + clean. Raises DataError if nothing valid remains."""
    if fmt not in READERS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    ev, report = READERS[fmt](path, vocabulary)
    if time_range_ms == "default":
        time_range_ms = default_time_range_ms(fmt)
    ev = clean(ev, report, time_range_ms)
    if len(ev) == 0:
        raise DataError(f"no valid events in {path} (format {fmt}): {report.summary()}")
    return ev, report


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_data_dir() -> str:
    """SEQSCORE_DATA_DIR, else ../shared/data relative to the repository root."""
    env = os.environ.get("SEQSCORE_DATA_DIR")
    if env:
        return env
    return os.path.normpath(os.path.join(repo_root(), "..", "shared", "data"))


def default_input(fmt: str, data_dir: Optional[str] = None) -> str:
    d = data_dir or default_data_dir()
    if fmt == "taobao":
        return os.path.join(d, "taobao", "UserBehavior_sample.csv")
    if fmt == "rees46":
        return os.path.join(d, "rees46", "2019-Oct_head.csv")
    raise DataError("format canonical has no default input; pass --input")
