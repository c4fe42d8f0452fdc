"""The numpy implementations of ``gilmodel.eventlog.state_spans`` and of the timeline's
migration counts (``gilmodel.lanes``) that the core's passes (rust/spans.rs) replaced, kept as
the reference ``tests/test_spans.py`` holds them to."""

import numpy as np

from gilmodel.eventlog import _NOT_STATE, _TO_STATE, IO_OPS, Log, Spans


def state_spans(lg: Log, end_ns: int, truncated: bool) -> Spans:
    st = _TO_STATE[lg.ev] if lg.ev.size else np.zeros(0, np.int8)
    rows = lg.order[st[lg.order] != _NOT_STATE]
    th, s, state = lg.thread[rows].astype(np.int64), lg.t[rows].astype(np.int64, copy=False), st[rows]
    e = np.empty_like(s)
    opn = np.ones(s.size, dtype=bool)
    if s.size:
        same = th[:-1] == th[1:]
        e[:-1] = np.where(same, s[1:], 0)
        opn[:-1] = ~same
        e[opn] = s[opn] if truncated else max(end_ns, 0)
        e = np.maximum(e, s)
    keep = state >= 0
    op = np.where(state == 2, np.clip(lg.arg[rows], 0, len(IO_OPS) - 1), -1)
    return Spans(th[keep], state[keep].astype(np.int8), op[keep].astype(np.int8), s[keep], e[keep], opn[keep])


def migrations(lg: Log, lo: int, hi: int, threads: int) -> np.ndarray:
    o = lg.order
    th, c, t = lg.th_o, lg.cpu[o], lg.t[o]
    moved = (th[1:] == th[:-1]) & (c[1:] != c[:-1]) & (t[1:] >= lo) & (t[1:] < hi)
    return np.bincount(th[1:][moved], minlength=threads)
