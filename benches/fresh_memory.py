"""What a first touch of memory costs on this machine: 256 MiB of numpy ones, fresh, again at
once (the pages the process just freed), and again after 4 s. On a VM whose balloon device
reports free pages to its host (virtio-balloon's free page reporting: the host takes the
pages back), memory freed a few seconds ago costs as much as never-touched memory; on
bare metal the three are alike. It bounds what a first call of the analysis tables of a big
run costs (README "What the instrument costs").

Run: .venv/bin/python benches/fresh_memory.py
"""

import time

import numpy as np

MIB = 256


def touch() -> float:
    t = time.perf_counter()
    a = np.ones(MIB << 17, dtype=np.int64)
    dt = time.perf_counter() - t
    del a
    return dt


def main() -> None:
    for _ in range(3):
        fresh = touch()
        again = touch()
        time.sleep(4)
        later = touch()
        print("%d MiB: first %.3f s, again at once %.3f s, again after 4 s %.3f s (%.2f ms a MiB)"
              % (MIB, fresh, again, later, later * 1e3 / MIB))


if __name__ == "__main__":
    main()
