"""Readers for real clickstream logs, mapped onto the canonical event, and the cleaning rules of
docs/feature-contract.md ("Cleaning"). The Java readers in flink-job (dev.seqscore.events) follow the same rules;
a parity test there runs both over the shared data files.

Every reader returns an :class:`Events` table (columnar numpy arrays) plus a :class:`DropReport`.
Malformed rows are skipped and counted by kind, never raised; an input with no valid row raises
:class:`DataError` (the CLI turns it into a clear message and a non-zero exit).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_VOCABULARY = ["view", "cart", "fav", "buy", "remove_from_cart"]

# Taobao UserBehavior: the data's documented range, [2017-11-25 00:00, 2017-12-04 00:00) China time, in seconds.
TAOBAO_TIME_RANGE_S = (1511539200, 1512316800)

TAOBAO_TYPES = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "buy"}
REES46_TYPES = {"view": "view", "cart": "cart", "purchase": "buy", "remove_from_cart": "remove_from_cart"}

CANONICAL_FIELDS = ["user_id", "event_type", "item_id", "category_id", "event_time", "price", "session_id"]
CANONICAL_REQUIRED = ["user_id", "event_type", "item_id", "event_time"]
REES46_REQUIRED = ["event_time", "event_type", "product_id", "category_id", "price", "user_id", "user_session"]

FORMATS = ("taobao", "rees46", "canonical")

# Drop kinds of the cleaning contract, in report order (docs/feature-contract.md, "Cleaning").
DROP_REASONS = (
    "wrong_column_count",
    "bad_quoting",
    "bad_json",
    "bad_field",
    "empty_user",
    "empty_item",
    "unknown_event_type",
    "bad_timestamp",
    "bad_price",
    "out_of_time_range",
    "duplicate",
)

_DIGITS = re.compile(r"[0-9]+\Z")
_PRICE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_REES46_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) UTC\Z")
_LONG_MAX = 2 ** 63 - 1


class DataError(Exception):
    """Input that cannot be used at all (missing, empty, a header without the required columns, no valid row)."""


class Rejected(Exception):
    """One row that the cleaning rules drop; ``kind`` is one of DROP_REASONS."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


@dataclass
class DropReport:
    rows_read: int = 0
    counts: "OrderedDict[str, int]" = field(default_factory=lambda: OrderedDict((r, 0) for r in DROP_REASONS))
    kept: int = 0

    def drop(self, reason: str, n: int = 1) -> None:
        if reason not in self.counts:
            raise ValueError(f"unknown drop kind {reason}")
        self.counts[reason] += n

    @property
    def dropped(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: "DropReport") -> None:
        self.rows_read += other.rows_read
        for k, v in other.counts.items():
            self.counts[k] += v

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
    order: np.ndarray       # int64: arrival order (file index * 2^32 + physical line number)
    vocabulary: List[str] = field(default_factory=lambda: list(DEFAULT_VOCABULARY))

    def __len__(self) -> int:
        return len(self.time_ms)

    def take(self, idx) -> "Events":
        return Events(self.user[idx], self.etype[idx], self.item[idx], self.cat[idx], self.time_ms[idx],
                      self.price[idx], self.session[idx], self.raw_time[idx], self.order[idx],
                      list(self.vocabulary))

    @staticmethod
    def concat(parts: Sequence["Events"]) -> "Events":
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                        ("user", "etype", "item", "cat", "time_ms", "price", "session", "raw_time", "order")),
                      list(parts[0].vocabulary))

    def line(self, i: int) -> int:
        """Physical 1-based line number of event i in its file."""
        return int(self.order[i]) & 0xFFFFFFFF

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
    def __init__(self, vocabulary: List[str], file_index: int = 0):
        self.vocabulary = list(vocabulary)
        self.type_id = {t: i + 1 for i, t in enumerate(self.vocabulary)}
        self.base = int(file_index) << 32
        self.cols: Dict[str, list] = {k: [] for k in
                                      ("user", "etype", "item", "cat", "time_ms", "price", "session", "raw_time",
                                       "order")}

    def add(self, line_no, user, etype_canon, item, cat, time_ms, price, session, raw_time) -> None:
        tid = self.type_id.get(etype_canon)
        if tid is None:
            raise Rejected("unknown_event_type", f"event type '{etype_canon}' is not in the vocabulary")
        check_click(user, item, time_ms, price)
        c = self.cols
        c["user"].append(user)
        c["etype"].append(tid)
        c["item"].append(item)
        c["cat"].append(cat)
        c["time_ms"].append(time_ms)
        c["price"].append(float("nan") if price is None else price)
        c["session"].append(session)
        c["raw_time"].append(raw_time)
        c["order"].append(self.base + line_no)

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


# ---------------------------------------------------------------- what a valid click is (one home)

def check_click(user: str, item: str, time_ms: int, price: Optional[float]) -> None:
    """The field rules every source shares (Java: dev.seqscore.events.ClickRules)."""
    if not trim(user):
        raise Rejected("empty_user", "empty user_id")
    if not trim(item):
        raise Rejected("empty_item", "empty item_id")
    if time_ms <= 0:
        raise Rejected("bad_timestamp", f"event_time {time_ms} is not after 1970")
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise Rejected("bad_price", f"price {price} is not a non-negative number")


# ---------------------------------------------------------------- CSV cell rules (Java: CsvCells)

def trim(s: str) -> str:
    """Java's String.trim(): strips characters <= U+0020 at both ends."""
    a, b = 0, len(s)
    while a < b and s[a] <= " ":
        a += 1
    while b > a and s[b - 1] <= " ":
        b -= 1
    return s[a:b]


def split_csv(line: str) -> List[str]:
    """One CSV line, RFC 4180 quoting: a quote opens a quoted cell only at the cell's start; a quoted cell may hold
    commas and doubled quotes; cells never span lines. Raises Rejected(bad_quoting) on an unterminated quote."""
    cells, cell, quoted, i, n = [], [], False, 0, len(line)
    while i < n:
        ch = line[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and line[i + 1] == '"':
                    cell.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                cell.append(ch)
        elif ch == ",":
            cells.append("".join(cell))
            cell = []
        elif ch == '"' and not cell:
            quoted = True
        else:
            cell.append(ch)
        i += 1
    if quoted:
        raise Rejected("bad_quoting", "unterminated quote")
    cells.append("".join(cell))
    return cells


def cells(line: str, width: int) -> List[str]:
    c = split_csv(line)
    if len(c) != width:
        raise Rejected("wrong_column_count", f"wrong column count: {len(c)}, expected {width}")
    return c


def epoch_cell(raw: str, what: str = "timestamp") -> int:
    """A non-empty run of ASCII digits that fits a signed 64-bit integer."""
    if not raw:
        raise Rejected("bad_timestamp", f"empty {what}")
    if not _DIGITS.match(raw):
        raise Rejected("bad_timestamp", f"non-numeric {what} '{raw}'")
    v = int(raw)
    if v > _LONG_MAX:
        raise Rejected("bad_timestamp", f"{what} out of range '{raw}'")
    return v


def price_cell(raw: str) -> Optional[float]:
    """Empty = null; else a decimal number (optional sign, fraction, exponent), finite and >= 0."""
    if raw == "":
        return None
    if not _PRICE.match(raw):
        raise Rejected("bad_price", f"non-numeric price '{raw}'")
    p = float(raw)
    if not (math.isfinite(p) and p >= 0):
        raise Rejected("bad_price", f"invalid price '{raw}'")
    return p


def parse_rees46_time(s: str) -> Optional[int]:
    """'YYYY-MM-DD HH:MM:SS UTC' -> epoch ms; None if malformed (strict: two-digit fields, a real date)."""
    m = _REES46_TIME.match(s)
    if not m:
        return None
    try:
        d = _dt.datetime(*(int(x) for x in m.groups()), tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return int(d.timestamp()) * 1000


def _header(line: str, required: List[str], source: str) -> Dict[str, int]:
    try:
        names = split_csv(line)
    except Rejected as e:
        raise DataError(f"{source}: unreadable header: {e}")
    index: Dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(trim(name).lower(), i)
    missing = [c for c in required if c not in index]
    if missing:
        raise DataError(f"{source}: header lacks column(s) {missing}; found {names}; expected at least {required}")
    index[""] = len(names)
    return index


# ---------------------------------------------------------------- the readers, one per format

def _lines(path: str):
    """(physical 1-based line number, line) for every non-blank line; a leading BOM is dropped."""
    if not os.path.exists(path):
        raise DataError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"input is a directory, expected a file: {path}")
    with open(path, "r", encoding="utf-8", errors="replace", newline=None) as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if n == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if line.strip() == "":
                continue
            yield n, line


def _taobao_row(b: _Builder, n: int, line: str) -> None:
    user, item, cat, btype, ts = (trim(x) for x in cells(line, 5))
    if not user:
        raise Rejected("empty_user", "empty user_id")
    if not item:
        raise Rejected("empty_item", "empty item_id")
    canon = TAOBAO_TYPES.get(btype)
    if canon is None:
        raise Rejected("unknown_event_type", f"unknown event type '{btype}'")
    sec = epoch_cell(ts)
    if sec * 1000 > _LONG_MAX:
        raise Rejected("bad_timestamp", f"timestamp out of range '{ts}'")
    if not (TAOBAO_TIME_RANGE_S[0] <= sec < TAOBAO_TIME_RANGE_S[1]):
        raise Rejected("out_of_time_range", f"timestamp {sec} outside [{TAOBAO_TIME_RANGE_S[0]}, "
                                            f"{TAOBAO_TIME_RANGE_S[1]}) s")
    b.add(n, user, canon, item, cat, sec * 1000, None, None, ts)


def _rees46_rows(h: Dict[str, int]):
    width = h[""]
    it, ty, pr, ca, pc, us, se = (h[k] for k in REES46_REQUIRED)

    def row(b: _Builder, n: int, line: str) -> None:
        c = cells(line, width)
        ts, user, item = trim(c[it]), trim(c[us]), trim(c[pr])
        if not user:
            raise Rejected("empty_user", "empty user_id")
        if not item:
            raise Rejected("empty_item", "empty item_id")
        etype = trim(c[ty])
        canon = REES46_TYPES.get(etype)
        if canon is None:
            raise Rejected("unknown_event_type", f"unknown event type '{etype}'")
        ms = parse_rees46_time(ts)
        if ms is None:
            raise Rejected("bad_timestamp", f"unparseable timestamp '{ts}', expected YYYY-MM-DD HH:MM:SS UTC")
        p = price_cell(trim(c[pc]))
        b.add(n, user, canon, item, trim(c[ca]), ms, p, trim(c[se]) or None, ts)
    return row


def _canonical_csv_rows(h: Dict[str, int]):
    width = h[""]
    us, ty, it, ti = (h[k] for k in CANONICAL_REQUIRED)
    ca, pc, se = h.get("category_id"), h.get("price"), h.get("session_id")

    def row(b: _Builder, n: int, line: str) -> None:
        c = cells(line, width)
        ts, user, item = trim(c[ti]), trim(c[us]), trim(c[it])
        if not user:
            raise Rejected("empty_user", "empty user_id")
        if not item:
            raise Rejected("empty_item", "empty item_id")
        etype = trim(c[ty])
        if not etype:
            raise Rejected("unknown_event_type", "empty event_type")
        if etype not in b.type_id:
            raise Rejected("unknown_event_type", f"event type '{etype}' is not in the vocabulary")
        ms = epoch_cell(ts)
        p = None if pc is None else price_cell(trim(c[pc]))
        cat = "" if ca is None else trim(c[ca])
        sess = None if se is None else (trim(c[se]) or None)
        b.add(n, user, etype, item, cat, ms, p, sess, ts)
    return row


def _json_id(rec: dict, key: str, missing_kind: Optional[str]) -> Optional[str]:
    """A JSON id: a string or an integer (as its decimal text); None when absent or null."""
    v = rec.get(key)
    if v is None:
        if missing_kind:
            raise Rejected(missing_kind, f"{key} is missing")
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise Rejected("bad_field", f"{key} must be a string, got {json.dumps(v)}")


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _canonical_json_row(b: _Builder, n: int, line: str) -> None:
    try:
        rec = json.loads(line, parse_constant=_no_constant)
    except ValueError as e:
        raise Rejected("bad_json", f"invalid JSON: {e}")
    if not isinstance(rec, dict):
        raise Rejected("bad_json", "expected a JSON object")
    user = _json_id(rec, "user_id", "empty_user")
    etype = _json_id(rec, "event_type", "unknown_event_type")
    item = _json_id(rec, "item_id", "empty_item")
    cat = _json_id(rec, "category_id", None)
    ts = rec.get("event_time")
    if ts is None:
        raise Rejected("bad_timestamp", "event_time is missing")
    if not isinstance(ts, int) or isinstance(ts, bool) or not (-2 ** 63 <= ts <= _LONG_MAX):
        raise Rejected("bad_timestamp", f"event_time must be an integer of epoch milliseconds, got {json.dumps(ts)}")
    price = rec.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))):
        raise Rejected("bad_price", f"price must be a number, got {json.dumps(price)}")
    sess = _json_id(rec, "session_id", None)
    user, item, etype = trim(user), trim(item), trim(etype)
    cat = "" if cat is None else trim(cat)
    sess = None if sess is None else (trim(sess) or None)
    if not user:
        raise Rejected("empty_user", "empty user_id")
    if not item:
        raise Rejected("empty_item", "empty item_id")
    if not etype:
        raise Rejected("unknown_event_type", "empty event_type")
    if etype not in b.type_id:
        raise Rejected("unknown_event_type", f"event type '{etype}' is not in the vocabulary")
    b.add(n, user, etype, item, cat, ts, None if price is None else float(price), sess, str(ts))


def is_jsonl(path: str, first_line: Optional[str]) -> bool:
    name = path.lower()
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return True
    if name.endswith(".csv"):
        return False
    return first_line is not None and first_line.lstrip().startswith("{")


def read(path: str, fmt: str, vocabulary=DEFAULT_VOCABULARY, file_index: int = 0,
         rejected: Optional[list] = None) -> Tuple[Events, DropReport]:
    """Reads one file of format fmt. Every non-blank line after a header is a row: kept or counted by kind.
    ``rejected``, when given, receives (line number, kind, detail) of every dropped row."""
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    report = DropReport()
    b = _Builder(vocabulary, file_index)
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        return b.build(), report
    source = os.path.basename(path)
    if fmt == "taobao":
        row, pending = _taobao_row, [first]
    elif fmt == "rees46":
        row, pending = _rees46_rows(_header(first[1], REES46_REQUIRED, source)), []
    elif is_jsonl(path, first[1]):
        row, pending = _canonical_json_row, [first]
    else:
        row, pending = _canonical_csv_rows(_header(first[1], CANONICAL_REQUIRED, source)), []
    for n, line in _chain(pending, lines):
        report.rows_read += 1
        try:
            row(b, n, line)
        except Rejected as e:
            report.drop(e.kind)
            if rejected is not None:
                rejected.append((n, e.kind, str(e)))
    return b.build(), report


def _chain(first, rest):
    yield from first
    yield from rest


def read_taobao(path, vocabulary=DEFAULT_VOCABULARY):
    return read(path, "taobao", vocabulary)


def read_rees46(path, vocabulary=DEFAULT_VOCABULARY):
    return read(path, "rees46", vocabulary)


def read_canonical(path, vocabulary=DEFAULT_VOCABULARY):
    return read(path, "canonical", vocabulary)


def drop_duplicates(ev: Events, report: DropReport) -> Events:
    """Drops exact duplicates (same user, item, event type and event_time); the first in arrival order is kept."""
    if not len(ev):
        return ev
    _, ucode = np.unique(ev.user.astype(str), return_inverse=True)
    _, icode = np.unique(ev.item.astype(str), return_inverse=True)
    o = np.lexsort((ev.order, ev.etype, icode, ev.time_ms, ucode))
    same = np.zeros(len(ev), dtype=bool)
    same[1:] = ((ucode[o][1:] == ucode[o][:-1]) & (ev.time_ms[o][1:] == ev.time_ms[o][:-1])
                & (icode[o][1:] == icode[o][:-1]) & (ev.etype[o][1:] == ev.etype[o][:-1]))
    dup = np.zeros(len(ev), dtype=bool)
    dup[o[same]] = True
    report.drop("duplicate", int(dup.sum()))
    return ev.take(np.nonzero(~dup)[0])


def sort_events(ev: Events) -> Events:
    """Sorted by (user_id compared as strings, event_time, arrival order)."""
    if not len(ev):
        return ev
    _, ucode = np.unique(ev.user.astype(str), return_inverse=True)
    return ev.take(np.lexsort((ev.order, ev.time_ms, ucode)))


def load(paths, fmt: str, vocabulary=DEFAULT_VOCABULARY) -> Tuple[Events, DropReport]:
    """Read one or more files of one format, drop duplicates across them, sort. Raises DataError if nothing valid
    remains. Files are concatenated in the given order (arrival order = file, then line)."""
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise DataError("no input file")
    parts, report = [], DropReport()
    for k, p in enumerate(paths):
        ev, rep = read(p, fmt, vocabulary, file_index=k)
        parts.append(ev)
        report.merge(rep)
    ev = drop_duplicates(Events.concat(parts), report)
    ev = sort_events(ev)
    report.kept = len(ev)
    if len(ev) == 0:
        raise DataError(f"no valid events in {', '.join(paths)} (format {fmt}): {report.summary()}")
    return ev, report


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_data_dir() -> str:
    """SEQSCORE_DATA_DIR, else ../shared/data relative to the repository root."""
    env = os.environ.get("SEQSCORE_DATA_DIR")
    if env:
        return env
    return os.path.normpath(os.path.join(repo_root(), "..", "shared", "data"))


TAOBAO_TRAINING_FILES = ("taobao/UserBehavior_sample.csv", "taobao/UserBehavior_extra_95users.csv")
# Unlabelled real data for pretraining: (relative path, format).
PRETRAINING_FILES = (("taobao/UserBehavior_sample.csv", "taobao"), ("taobao/UserBehavior_extra_95users.csv", "taobao"),
                     ("taobao/UserBehavior_timeordered_110k.csv", "taobao"), ("rees46/2019-Oct_head.csv", "rees46"))


def default_inputs(fmt: str, data_dir: Optional[str] = None) -> List[str]:
    d = data_dir or default_data_dir()
    if fmt == "taobao":
        return [os.path.join(d, p) for p in TAOBAO_TRAINING_FILES]
    if fmt == "rees46":
        return [os.path.join(d, "rees46", "2019-Oct_head.csv")]
    raise DataError("format canonical has no default input; pass --input")


def default_input(fmt: str, data_dir: Optional[str] = None) -> str:
    return default_inputs(fmt, data_dir)[0]
