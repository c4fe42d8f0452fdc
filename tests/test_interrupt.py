"""Ctrl-C (a real SIGINT to this process) stops a long run quickly and leaves nothing behind."""

import os
import signal
import threading
import time

import pytest

import gilmodel as gm
from conftest import CORES, fd_count, task_count


@pytest.mark.parametrize("version", ["2.7", "3.11"])
def test_sigint_stops_a_long_run_within_100ms(version):
    sc = gm.Scenario(gm.cpython(version), [
        gm.Thread("cpu0", [gm.loop(gm.cpu(10_000))]),
        gm.Thread("cpu1", [gm.loop(gm.cpu(10_000))]),
        gm.Thread("io", [gm.loop(gm.recv(8), gm.send(8))], peer=gm.driver(10**6, 100_000)),
        gm.Thread("sleeper", [gm.loop(gm.sleep(1_000_000))]),
    ], cores=CORES, duration_s=60)
    tasks, fds = task_count(), fd_count()
    sent = []

    def fire():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, fire)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        gm.run(sc)
    latency = time.monotonic() - sent[0]
    timer.join()
    assert latency < 0.1, "KeyboardInterrupt %.3f s after SIGINT" % latency
    assert task_count() == tasks, "threads left behind"
    assert fd_count() == fds, "file descriptors left behind"


def test_host_signal_handlers_are_untouched():
    before = signal.getsignal(signal.SIGINT)
    gm.run(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1000)])]))
    assert signal.getsignal(signal.SIGINT) is before
