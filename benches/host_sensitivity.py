"""How much the host's speed moves the interpreter, and how much it moves loops like the
model's spin: CPython's countdown (``_probe.countdown``) timed in short chunks, interleaved in
one process with C loops loaded through ctypes (built here with ``cc``):

- ``mul``: a dependent multiply-add chain, the model's spin (``rust/engine/spin.rs``);
- ``code_small``: a chain of calls through 16 distinct generated functions;
- ``code_large``: the same through 1 500 of them (about 450 KB of code).

For each: the median chunk over the best chunk (how far a typical moment is from the best),
and the correlation of its chunk times with the countdown's. Run under the interpreter to
measure, pinned:

    taskset -c 0 ~/.pyenv/versions/3.11.7/bin/python benches/host_sensitivity.py [CHUNKS]
"""

import ctypes
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "gilmodel", "probes"))
import _probe  # noqa: E402

N_FUNCS = 1500


def build(d):
    rnd = random.Random(1)
    ops = ["x = x*%dULL + %d;", "x ^= x >> %d; x += %d;", "x = (x << %d) | (x >> 7); x -= %d;",
           "if (x & %d) x += %d; else x ^= 0x55;"]
    out = ["#include <stdint.h>", "typedef uint64_t (*fn)(uint64_t);"]
    for i in range(N_FUNCS):
        body = " ".join(rnd.choice(ops) % (rnd.randint(3, 60) | 1, rnd.randint(1, 1000)) for _ in range(12))
        out.append("__attribute__((noinline)) static uint64_t f%d(uint64_t x){ %s return x; }" % (i, body))
    order = list(range(N_FUNCS))
    rnd.shuffle(order)
    out.append("static fn T[%d] = {%s};" % (N_FUNCS, ",".join("f%d" % i for i in range(N_FUNCS))))
    out.append("static const uint16_t O[%d] = {%s};" % (N_FUNCS, ",".join(map(str, order))))
    out.append("uint64_t code(uint32_t n, uint64_t x, uint32_t m){ uint32_t p=0; for(uint32_t i=0;i<n;i++)"
               "{ x=T[O[p]](x); p = p+1>=m?0:p+1;} return x; }")
    out.append("uint64_t mul(uint32_t n, uint64_t x){ for(uint32_t i=0;i<n;i++){ x = x*6364136223846793005ULL + i;"
               " __asm__ volatile(\"\" : \"+r\"(x)); } return x; }")
    src, lib = os.path.join(d, "k.c"), os.path.join(d, "k.so")
    with open(src, "w") as f:
        f.write("\n".join(out))
    subprocess.check_call(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src])
    return ctypes.CDLL(lib)


def main():
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as d:
        lib = build(d)
        lib.code.restype = lib.mul.restype = ctypes.c_uint64
        lib.code.argtypes = [ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint32]
        lib.mul.argtypes = [ctypes.c_uint32, ctypes.c_uint64]
        pc = time.perf_counter
        kernels = {"mul": lambda: lib.mul(30000, 1), "code_small": lambda: lib.code(6000, 1, 16),
                   "code_large": lambda: lib.code(6000, 1, N_FUNCS)}
        times = {k: [] for k in ["countdown"] + list(kernels)}
        for _ in range(chunks):
            t = pc()
            _probe.countdown(3000)
            times["countdown"].append(pc() - t)
            for k, f in kernels.items():
                t = pc()
                f()
                times[k].append(pc() - t)
        base = times["countdown"]
        print("| loop | median / best chunk | mean / best | correlation with the countdown |")
        print("|---|---|---|---|")
        for k, xs in times.items():
            best = min(xs)
            r = 1.0 if k == "countdown" else statistics.correlation(xs, base)
            print("| %s | %.2f | %.2f | %.2f |" % (k, statistics.median(xs) / best, statistics.mean(xs) / best, r))
        print("\n%s, %d chunks of each, %s" % (sys.version.split()[0], chunks, time.strftime("%Y-%m-%d %H:%M")))


if __name__ == "__main__":
    main()
