"""Custom experiments and process helpers for the sweep tests (workers import this by name)."""

import os
import signal
import subprocess
import sys
import time


def custom(config, cores):
    """A custom experiment: dies like a segfaulting run when scenario.crash is set."""
    if config["scenario"].get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    if config["scenario"].get("raise"):
        raise RuntimeError("asked to fail")
    return {"value": float(config["scenario"].get("v", 0)) * 2, "n_cores": len(cores)}


def marked(mark):
    """Pids of live processes whose environment carries GILMODEL_TEST_MARK=mark."""
    needle = ("GILMODEL_TEST_MARK=%s" % mark).encode()
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env and state != "Z":
            out.append(int(pid))
    return out


def wait_no_marked(mark, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = marked(mark)
        if not left:
            return []
        time.sleep(0.02)
    return marked(mark)


def start_python(code, mark, cwd):
    env = dict(os.environ, GILMODEL_TEST_MARK=mark, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def count_runs(out):
    d = os.path.join(out, "runs")
    try:
        return sum(1 for f in os.listdir(d) if f.endswith(".parquet"))
    except FileNotFoundError:
        return 0


def io_builder(cpu_threads=1, gap_us=7000, cores=None):
    """A scenario builder that takes the run's cores: an I/O thread answering pings."""
    import gilmodel as gm

    return gm.scenarios.io_latency(gm.cpython("3.11"), cores, cpu_threads=cpu_threads, pings=4, gap_us=gap_us)


def placed_builder(duration_s=0.02):
    """A scenario builder that names its own (logical) cores 0 and 1."""
    import gilmodel as gm

    return gm.Scenario(gm.cpython("2.7"), [gm.Thread("a", [gm.loop(gm.cpu(1000))], core=0),
                                           gm.Thread("b", [gm.loop(gm.cpu(1000))], core=1)], duration_s=duration_s)


def metric_builder(n=1, fail=False, wrong=False):
    """A builder that returns metrics (or raises, or returns what a builder may not)."""
    if fail:
        raise RuntimeError("builder asked to fail")
    if wrong:
        return [n]
    return {"twice": 2.0 * n}


def marked_sleep(config, cores):
    """A custom experiment that leaves a file ``<scenario.dir>/<v>@<Ray node id>`` (``@local``
    outside Ray) when it starts, so a test sees which node runs what, then sleeps ``scenario.s``
    seconds."""
    sc = config["scenario"]
    ray = sys.modules.get("ray")
    node = ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else "local"
    with open(os.path.join(sc["dir"], "%s@%s" % (sc["v"], node)), "w"):
        pass
    time.sleep(sc.get("s", 0.2))
    return {"value": float(sc["v"]), "n_cores": len(cores)}
