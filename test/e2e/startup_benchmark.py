"""Container start-up time: this runsc, runc and Debian's gVisor side by side.

    bazel run //test/e2e:startup_benchmark -- [--runs N] [--clients LIST]

LIST is a comma-separated subset of direct,podman,ctr,docker (all by default).

For each client (runsc/runc/gVisor driven directly with `run`, and podman,
ctr and docker with each as the runtime) it times a container that runs
`true` from a busybox image, from the client's start to its exit. The
runtimes take turns within each round, so that they share the machine's
load; the table shows medians, and each runtime's overhead over runc.
gVisor runs with --network=none (its default fails on these kernels).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from runsc.testutil import daemons
from runsc.testutil.rootfs import (
    make_busybox_rootfs,
    make_oci_archive,
    make_spec,
    tar_rootfs,
    write_bundle,
)
from runsc.testutil.runsc import runsc_path

GVISOR = "/usr/bin/runsc"
RUNC = "/usr/sbin/runc"


def _wrapper(path: str, binary: str, flags: str = "") -> str:
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec {binary} {flags} "$@"\n')
    os.chmod(path, 0o755)
    return path


def _time(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, env=env, check=False)
    elapsed = time.monotonic() - start
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]}... failed: {p.stderr.decode()[-300:]}")
    return elapsed


def main() -> int:
    """Runs the benchmark and prints the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--clients", default="direct,podman,ctr,docker")
    args = ap.parse_args()
    clients = args.clients.split(",")

    tmp = tempfile.mkdtemp(prefix="rsc-bench-", dir="/tmp")
    stops: list[Callable[[], None]] = []
    try:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        spec = make_spec(["true"])
        spec["root"]["path"] = rootfs
        # runc needs /proc in the container.
        spec["mounts"] = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        ]
        bundle = write_bundle(os.path.join(tmp, "bundle"), spec)
        runtimes = {"runc": RUNC, "gvisor": GVISOR, "pyvisor": runsc_path()}
        runtimes = {k: v for k, v in runtimes.items() if os.path.exists(v)}
        flags = {"gvisor": "--network=none"}
        wrappers = {}
        for name, binary in runtimes.items():
            d = os.path.join(tmp, f"w-{name}")
            os.makedirs(d)
            # podman passes --log only to runtimes named runc, crun or runsc.
            wname = "runc" if name == "runc" else "runsc"
            wrappers[name] = _wrapper(
                os.path.join(d, wname), binary, flags.get(name, "")
            )

        cases: dict[str, dict[str, Callable[[int], list[str]]]] = {}
        env: dict[str, dict[str, str]] = {}
        if "direct" in clients:
            cases["direct"] = {
                name: (
                    lambda i, w=w, name=name: [
                        w,
                        "--root",
                        os.path.join(tmp, f"root-{name}"),
                        "run",
                        "--bundle",
                        bundle,
                        f"b{i}",
                    ]
                )
                for name, w in wrappers.items()
            }
        if "podman" in clients and shutil.which("podman"):
            conf = os.path.join(tmp, "containers.conf")
            with open(conf, "w") as f:
                f.write(
                    "[containers]\n"
                    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                )
            base = ["podman", "--root", f"{tmp}/pm", "--runroot", f"{tmp}/pmrun"]
            base += ["--tmpdir", f"{tmp}/pmtmp", "--storage-driver", "vfs"]
            env["podman"] = {**os.environ, "CONTAINERS_CONF": conf}
            tar = tar_rootfs(rootfs, os.path.join(tmp, "rootfs.tar"))
            subprocess.run(
                [*base, "import", tar, "localhost/bench:latest"],
                env=env["podman"],
                check=True,
                capture_output=True,
            )
            cases["podman"] = {
                name: (
                    lambda i, w=w: [
                        *base,
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "--runtime",
                        w,
                        "localhost/bench:latest",
                        "true",
                    ]
                )
                for name, w in wrappers.items()
            }
        if "ctr" in clients and shutil.which("containerd"):
            ctrd = daemons.containerd(tmp)
            stops.append(ctrd.stop)
            ctr = ["ctr", "--address", f"{tmp}/containerd.sock", "-n", "bench"]
            archive = make_oci_archive(rootfs, f"{tmp}/image.tar", "docker.io/b/b:1")
            subprocess.run([*ctr, "images", "import", archive], check=True)
            cases["ctr"] = {
                name: (
                    lambda i, w=w, name=name: [
                        *ctr,
                        "run",
                        "--rm",
                        "--runc-binary",
                        w,
                        "docker.io/b/b:1",
                        f"{name}{i}",
                        "true",
                    ]
                )
                for name, w in wrappers.items()
            }
        if "docker" in clients and shutil.which("dockerd"):
            dk = os.path.join(tmp, "dk")
            os.makedirs(dk)
            # "runc" is dockerd's own, built-in runtime name.
            dockerd = daemons.dockerd(
                dk, {f"bench-{n}": {"path": w} for n, w in wrappers.items()}
            )
            stops.append(dockerd.stop)
            docker = ["/usr/bin/docker", "-H", f"unix://{dk}/docker.sock"]
            tar = tar_rootfs(rootfs, os.path.join(tmp, "rootfs2.tar"))
            subprocess.run(
                [*docker, "import", tar, "bench"], check=True, capture_output=True
            )
            cases["docker"] = {
                name: (
                    lambda i, name=name: [
                        *docker,
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "--runtime",
                        f"bench-{name}",
                        "bench",
                        "true",
                    ]
                )
                for name in wrappers
            }

        results: dict[tuple[str, str], list[float]] = {}
        for client, by_runtime in cases.items():
            # One warm-up round (page cache, image layers), not counted.
            for cmd in by_runtime.values():
                _time(cmd(999), env.get(client))
            for i in range(args.runs):
                for name, cmd in by_runtime.items():
                    results.setdefault((client, name), []).append(
                        _time(cmd(i), env.get(client))
                    )

        names = list(wrappers)
        print(f"load average: {os.getloadavg()[0]:.2f}; medians of {args.runs} runs")
        print(
            f"{'client':<8}"
            + "".join(f"{n:>12}" for n in names)
            + "   overhead vs runc"
        )
        for client in cases:
            med = {n: statistics.median(results[(client, n)]) for n in names}
            row = f"{client:<8}" + "".join(f"{med[n] * 1000:>10.0f}ms" for n in names)
            if "runc" in med:
                over = ", ".join(
                    f"{n} +{(med[n] - med['runc']) * 1000:.0f}ms"
                    for n in names
                    if n != "runc"
                )
                row += f"   {over}"
            print(row)
    finally:
        for stop in stops:
            stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
