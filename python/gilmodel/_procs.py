"""Live processes, read from /proc (Linux): what the probe runner kills and waits for, and what
the tests and benchmarks check is gone after a Ctrl-C."""

from __future__ import annotations

import os
from typing import List, NamedTuple


class Proc(NamedTuple):
    pid: int
    pgrp: int
    session: int
    cmdline: str


def live() -> List[Proc]:
    """Every process that is not a zombie (or dead): a zombie runs nothing, and some container
    inits never reap orphans."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        fields = st[st.rindex(")") + 2:].split()  # state, ppid, pgrp, session, ...
        if fields[0] not in ("Z", "X"):
            out.append(Proc(int(d), int(fields[2]), int(fields[3]), cmd))
    return out
