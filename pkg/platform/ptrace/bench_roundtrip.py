"""Measures application system call round trips through the ptrace platform.

The application code is `loop: mov $39,%eax; syscall; jmp loop`; every
iteration is one Context.switch through the Python wrapper that returns
EVENT_SYSCALL. Prints round trips per second with and without keeping each
stub thread on its tracer's CPU.

    bazel run //pkg/platform/ptrace:bench_roundtrip -- --seconds 3
"""

from __future__ import annotations

import argparse
import mmap
import os
import time

from pkg.platform import platform
from pkg.platform.ptrace import ptrace

PAGE = 4096
CODE_ADDR = 0x10000
# 1: mov $39,%eax; syscall; jmp 1b
SYSCALL_LOOP = bytes.fromhex("b827000000 0f05 ebf7")


def measure(pin_stub_threads: bool, seconds: float) -> float:
    """Returns round trips per second over about `seconds` seconds."""
    memfd = os.memfd_create("bench_roundtrip")
    os.ftruncate(memfd, PAGE)
    os.pwrite(memfd, SYSCALL_LOOP, 0)
    p = ptrace.PtracePlatform(memfd, pin_stub_threads=pin_stub_threads)
    try:
        address_space = p.new_address_space()
        address_space.map_file(CODE_ADDR, PAGE, 0, mmap.PROT_READ | mmap.PROT_EXEC)
        context = p.new_context()
        state = p.new_state()
        state.init_user(CODE_ADDR, 0)
        switch = context.switch
        for _ in range(1000):  # warm up
            switch(address_space, state)

        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(1000):
                if switch(address_space, state) != platform.EVENT_SYSCALL:
                    raise RuntimeError("unexpected event")
            count += 1000
        elapsed = time.perf_counter() - start
        context.release()
        address_space.release()
    finally:
        p.close()
        os.close(memfd)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for pin in (True, False):
        rate = measure(pin, args.seconds)
        print(
            f"pin_stub_threads={pin!s:5}  {rate:10.0f} round trips/s  "
            f"{1e6 / rate:6.1f} us each"
        )


if __name__ == "__main__":
    main()
