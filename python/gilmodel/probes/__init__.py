"""Probes: plain scripts run by the real interpreters (CPython 2.7-3.13) that ``gilmodel
validate`` compares with the model and that :func:`gilmodel.calibrate` measures costs with.
The scripts are not imported by gilmodel; each is run as ``python path/to/PROBE.py --args``
and prints one JSON line. :func:`path` finds them; :mod:`.runner` runs them."""

import os

#: Probe names, in the order validate runs them.
PROBES = ("calibrate", "cpu_pair", "handoffs", "io_latency", "convoy", "bandwidth", "switch_sweep", "three_threads",
          "threads_sweep", "native_work", "long_call", "thread_pool", "pipeline")


#: Scripts that are not validate's probes: the peers, and the workload ``gilmodel observe``
#: is tested and measured with.
SCRIPTS = ("_peer", "countdown")


def path(name: str) -> str:
    """The file of probe or script ``name`` (from the installed package's files)."""
    if name not in PROBES and name not in SCRIPTS:
        raise ValueError("unknown probe %r; known: %s" % (name, ", ".join(PROBES + SCRIPTS)))
    from importlib.resources import files

    p = files(__name__).joinpath(name + ".py")
    return os.fspath(p)
