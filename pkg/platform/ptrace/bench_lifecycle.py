"""Measures the ptrace platform's address space and context life cycle.

What fork, execve and exit cost the platform, step by step, as the sentry
drives it: a new address space (a stub process), one mapping, the first
switch of a new context into it (a stub thread cloned and seized), one more
round trip, the context's release, and the address space's release (the
stub process killed and gone). Prints the median of each step over the
rounds, in microseconds.

    bazel run //pkg/platform/ptrace:bench_lifecycle -- --rounds 200
"""

from __future__ import annotations

import argparse
import itertools
import mmap
import os
import statistics
import time

from pkg.platform import platform
from pkg.platform.ptrace import ptrace

PAGE = 4096
CODE_ADDR = 0x10000
# 1: mov $39,%eax; syscall; jmp 1b
SYSCALL_LOOP = bytes.fromhex("b827000000 0f05 ebf7")

STEPS = (
    "new_address_space",
    "map_file",
    "first switch",
    "switch",
    "context release",
    "address_space release",
    "whole round",
)


def measure(rounds: int) -> dict[str, list[float]]:
    """Returns the microseconds of every step in every round."""
    memfd = os.memfd_create("bench_lifecycle")
    os.ftruncate(memfd, PAGE)
    os.pwrite(memfd, SYSCALL_LOOP, 0)
    p = ptrace.PtracePlatform(memfd)
    samples: dict[str, list[float]] = {step: [] for step in STEPS}
    clock = time.perf_counter_ns
    try:
        state = p.new_state()
        for _ in range(rounds):
            t0 = clock()
            address_space = p.new_address_space()
            t1 = clock()
            address_space.map_file(CODE_ADDR, PAGE, 0, mmap.PROT_READ | mmap.PROT_EXEC)
            t2 = clock()
            context = p.new_context()
            state.init_user(CODE_ADDR, 0)
            if context.switch(address_space, state) != platform.EVENT_SYSCALL:
                raise RuntimeError("unexpected event")
            t3 = clock()
            if context.switch(address_space, state) != platform.EVENT_SYSCALL:
                raise RuntimeError("unexpected event")
            t4 = clock()
            context.release()
            t5 = clock()
            address_space.release()
            t6 = clock()
            times = (t0, t1, t2, t3, t4, t5, t6)
            for step, (a, b) in zip(STEPS[:-1], itertools.pairwise(times), strict=True):
                samples[step].append((b - a) / 1000)
            samples["whole round"].append((t6 - t0) / 1000)
    finally:
        p.close()
        os.close(memfd)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    samples = measure(args.rounds)
    for step in STEPS:
        values = samples[step]
        print(
            f"{step:24} median {statistics.median(values):9.1f} us"
            f"   min {min(values):9.1f}   max {max(values):9.1f}"
        )


if __name__ == "__main__":
    main()
