"""Benchmarks of pyvisor side by side with native Linux, gVisor and runc.

    bazel run //test/benchmarks -- [--runtimes=native,pyvisor,gvisor,runc]
        [--workloads=getppid,true,...] [--reps=5] [--json=out.json]

Each workload is a small statically linked program (workloads/*.cc) that
measures itself and prints `key value` lines, so that the start-up of a
sandbox does not count in per-operation figures; the start-up workloads
(`true`, `bin_true`) are timed from outside, end to end, and `idle_memory`
reads /proc of the sandbox's processes. Every repetition runs every workload
once on every runtime, runtime after runtime (round-robin), so that noise on
the machine hits all runtimes alike; the table shows medians over the
repetitions and cost ratios to native and to gVisor.

A run that fails (non-zero exit, missing figures, timeout) marks the workload
"unsupported" on that runtime and is not repeated: a sandbox that cannot fork
yet shows that instead of stopping the harness, and the same harness measures
the workload once the sandbox can.

Runtimes:
  native   the program itself.
  pyvisor  this project's runsc, `<runsc> --platform=ptrace do PROGRAM`
           (the Bazel-built binary, by its full path); every other platform
           that its --help lists runs as pyvisor-<platform>.
  gvisor   gVisor's runsc, `/usr/bin/runsc --platform=ptrace --network=none
           do PROGRAM`, if installed.
  runc     `runc run` of a bundle whose root is busybox-static plus the
           workloads (and the host's /usr, read-only, for python3), if runc
           and busybox are installed.

This file imports nothing from the project: the runfiles tree has a `test`
directory that would shadow the standard library's `test` package.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))

# Default locations of the other runtimes.
GVISOR = "/usr/bin/runsc"
BUSYBOX = "/bin/busybox"
PYTHON3 = "/usr/bin/python3"

# How long the idle sandbox settles before its memory is read.
_IDLE_SETTLE_SECONDS = 0.5


def workload_path(name: str) -> str:
    """Returns the absolute, symlink-free path of a workload binary.

    Sandboxes see the host's file tree, so the real path (in bazel-out) is a
    path that every runtime can execute.
    """
    return os.path.realpath(os.path.join(HERE, name))


def default_runsc() -> str:
    """Returns the full path of this project's runsc (bazel-bin/runsc/runsc).

    The runfiles entry beside the harness is a symlink to it; it is itself a
    symlink to its launcher script, but it is the path with the runfiles
    tree beside it, so the chain is followed only that far.
    """
    path = os.path.join(HERE, "..", "..", "runsc", "runsc")
    while os.path.islink(path) and not os.path.isdir(path + ".runfiles"):
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return os.path.abspath(path)


# Workloads.


@dataclasses.dataclass(frozen=True)
class Metric:
    """Metric is one figure of a workload: a row of the table."""

    name: str
    # The `key` the workload prints, or a figure the harness measures itself
    # ("wall_ms", "rss_mib", "pss_mib").
    key: str
    unit: str
    higher_is_better: bool = False


@dataclasses.dataclass(frozen=True)
class Options:
    """Options are the knobs of a run that shape workload command lines."""

    duration: float
    seq_mib: int
    tmpfs_dir: str
    root_file: str
    python3: str


@dataclasses.dataclass(frozen=True)
class Workload:
    """Workload is one program and the figures it yields.

    kind is "inner" (the program prints its figures), "wall" (the harness
    times the whole command) or "memory" (the harness reads the processes'
    memory while the program idles).
    """

    name: str
    description: str
    kind: str
    argv: Callable[[Options], list[str]]
    metrics: tuple[Metric, ...]


def _bin(name: str) -> str:
    return workload_path(name)


def _seconds(o: Options) -> str:
    return f"{o.duration:g}"


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "getppid",
        "system call round trip (getppid loop), measured inside",
        "inner",
        lambda o: [_bin("getppid"), _seconds(o)],
        (Metric("syscall getppid", "ns_per_call", "ns"),),
    ),
    Workload(
        "true",
        "runtime start to exit of a static `true`, end to end",
        "wall",
        lambda o: [_bin("true")],
        (Metric("run static true", "wall_ms", "ms"),),
    ),
    Workload(
        "bin_true",
        "runtime start to exit of /bin/true (dynamic), end to end",
        "wall",
        lambda o: ["/bin/true"],
        (Metric("run /bin/true", "wall_ms", "ms"),),
    ),
    Workload(
        "fork_exec",
        "fork + execv of a static `true` + waitpid, inside",
        "inner",
        lambda o: [_bin("spawn"), _seconds(o), _bin("true")],
        (Metric("fork+exec+wait", "us_per_spawn", "us"),),
    ),
    Workload(
        "pipe",
        "one-byte ping-pong between two processes over pipes",
        "inner",
        lambda o: [_bin("pipe_pingpong"), _seconds(o)],
        (Metric("pipe ping-pong", "ns_per_roundtrip", "ns"),),
    ),
    Workload(
        "files_tmpfs",
        "open+read+close and stat of a 4 KiB file on tmpfs",
        "inner",
        lambda o: [_bin("files"), _seconds(o), o.tmpfs_dir],
        (
            Metric("open/read/close tmpfs", "open_read_close_ns", "ns"),
            Metric("stat tmpfs", "stat_ns", "ns"),
        ),
    ),
    Workload(
        "files_root",
        "open+read+close and stat of a file of the root filesystem",
        "inner",
        lambda o: [_bin("files"), _seconds(o), o.root_file],
        (
            Metric("open/read/close rootfs", "open_read_close_ns", "ns"),
            Metric("stat rootfs", "stat_ns", "ns"),
        ),
    ),
    Workload(
        "mmap",
        "mmap 1 MiB anonymous, touch every page, munmap",
        "inner",
        lambda o: [_bin("mmap_touch"), _seconds(o)],
        (Metric("mmap+first touch", "ns_per_page", "ns/page"),),
    ),
    Workload(
        "seqio",
        "sequential 1 MiB writes then reads of a file on tmpfs",
        "inner",
        lambda o: [_bin("seqio"), str(o.seq_mib), o.tmpfs_dir],
        (
            Metric("sequential write", "write_mib_s", "MiB/s", True),
            Metric("sequential read", "read_mib_s", "MiB/s", True),
        ),
    ),
    Workload(
        "python",
        "fork + exec of `python3 -c pass` + wait, inside",
        "inner",
        lambda o: [_bin("spawn"), _seconds(o), o.python3, "-c", "pass"],
        (Metric("python3 -c pass", "us_per_spawn", "us"),),
    ),
    Workload(
        "idle_memory",
        "resident memory of an idle sandbox (sentry, gofer, stubs)",
        "memory",
        lambda o: [_bin("idle")],
        (
            Metric("idle RSS (sum)", "rss_mib", "MiB"),
            Metric("idle PSS (sum)", "pss_mib", "MiB"),
        ),
    ),
)

WORKLOADS_BY_NAME = {w.name: w for w in WORKLOADS}

# The workload programs (cc_binary targets beside this file).
WORKLOAD_BINARIES = (
    "files",
    "getppid",
    "idle",
    "mmap_touch",
    "pipe_pingpong",
    "seqio",
    "spawn",
    "true",
)


# Runtimes.


@dataclasses.dataclass
class Outcome:
    """Outcome is what one run of one workload on one runtime gave."""

    ok: bool
    figures: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str = ""
    # Per process of the sandbox, for idle_memory.
    processes: list[dict[str, object]] = dataclasses.field(default_factory=list)


class Runtime:
    """Runtime runs a command line inside one kind of sandbox (or none)."""

    name = ""

    def command(self, argv: list[str]) -> list[str]:
        """Returns the host command line that runs argv in the runtime."""
        raise NotImplementedError

    def available(self) -> str:
        """Returns "" if the runtime can be used here, else why not."""
        return ""

    def setup(self, workdir: str, files: Sequence[str]) -> None:
        """Prepares the runtime (files: host paths the workloads need)."""

    def cleanup(self) -> None:
        """Releases what setup made."""

    def includes_top_process(self) -> bool:
        """Whether the process the harness starts counts in idle memory (it
        does when it is the application itself, not a runtime's CLI)."""
        return False

    def role(self, depth: int, cmdline: str) -> str:
        """Names what a process of an idle sandbox is: its CLI's children
        are the sentry and the gofer, their children the platform's stubs."""
        if depth == 1:
            return "gofer" if "gofer" in cmdline else "sentry"
        return "stubs"


class Native(Runtime):
    """Native runs the program directly on the host."""

    name = "native"

    def command(self, argv: list[str]) -> list[str]:
        return list(argv)

    def includes_top_process(self) -> bool:
        return True

    def role(self, depth: int, cmdline: str) -> str:
        return "application"


class Prefixed(Runtime):
    """Prefixed runs `PREFIX... PROGRAM ARGS...` (runsc do, custom)."""

    def __init__(self, name: str, prefix: list[str]) -> None:
        self.name = name
        self.prefix = prefix

    def command(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *argv]

    def available(self) -> str:
        exe = self.prefix[0]
        if not os.access(exe, os.X_OK):
            return f"{exe} is not an executable file"
        return ""


class Runsc(Prefixed):
    """Runsc is a runsc `do` with its own state directory."""

    def __init__(self, name: str, binary: str, flags: list[str]) -> None:
        super().__init__(name, [binary])
        self.binary = binary
        self.flags = flags

    def setup(self, workdir: str, files: Sequence[str]) -> None:
        root = os.path.join(workdir, f"{self.name}-root")
        os.makedirs(root, exist_ok=True)
        self.prefix = [self.binary, f"--root={root}", *self.flags, "do"]


class Runc(Runtime):
    """Runc runs the program with `runc run` in a busybox-static bundle.

    The bundle's root holds busybox-static, the workload binaries at their
    host paths, and the host's /usr read-only (python3 and its libraries).
    """

    name = "runc"

    def __init__(self, runc: str | None, busybox: str = BUSYBOX) -> None:
        self.runc = runc
        self.busybox = busybox
        self.bundle = ""
        self.state = ""
        self.seq = 0

    def available(self) -> str:
        if not self.runc:
            return "runc is not installed"
        if not os.path.exists(self.busybox):
            return f"{self.busybox} (busybox-static) is missing"
        return ""

    def setup(self, workdir: str, files: Sequence[str]) -> None:
        assert self.runc
        self.bundle = os.path.join(workdir, "runc-bundle")
        self.state = os.path.join(workdir, "runc-state")
        rootfs = os.path.join(self.bundle, "rootfs")
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "usr", "var/tmp"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy2(self.busybox, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("sh", "true"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        # Debian's merged /usr: /lib and /lib64 lead into the bind-mounted /usr.
        for link in ("lib", "lib64"):
            if os.path.islink(f"/{link}"):
                os.symlink(os.readlink(f"/{link}"), os.path.join(rootfs, link))
        for f in files:
            dest = os.path.join(rootfs, f.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(f, dest)
        os.makedirs(self.state, exist_ok=True)
        subprocess.run(
            [self.runc, "spec"], cwd=self.bundle, check=True, capture_output=True
        )
        path = os.path.join(self.bundle, "config.json")
        with open(path) as f:
            self.spec = json.load(f)
        self.spec["root"]["readonly"] = False
        self.spec["process"]["terminal"] = False
        # runc's default /dev/shm holds 64 MiB: too small for seqio.
        for m in self.spec["mounts"]:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
        self.spec["mounts"].append(
            {
                "destination": "/usr",
                "type": "bind",
                "source": "/usr",
                "options": ["rbind", "ro"],
            }
        )

    def role(self, depth: int, cmdline: str) -> str:
        return "application"

    def command(self, argv: list[str]) -> list[str]:
        self.seq += 1
        spec = json.loads(json.dumps(self.spec))
        spec["process"]["args"] = argv
        spec["process"]["cwd"] = "/"
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        return [
            self.runc,
            f"--root={self.state}",
            "run",
            f"--bundle={self.bundle}",
            f"pyvisor-bench-{os.getpid()}-{self.seq}",
        ]


# Running.


def parse_figures(stdout: str) -> dict[str, float]:
    """Returns the `key value` lines a workload printed."""
    figures = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                figures[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return figures


def _first_error_line(stderr: str, returncode: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    detail = lines[-1] if lines else ""
    what = f"exit status {returncode}"
    if returncode < 0:
        what = f"killed by signal {-returncode}"
    return f"{what}: {detail}"[:200] if detail else what


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The run is its own session (start_new_session), so this reaches the
    # sandbox's processes too, and nothing else.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_command(cmd: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Runs cmd to completion; returns (status, stdout, stderr, wall seconds).
    A timeout kills the run's whole process group and reports status -9."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return -9, out.decode(errors="replace"), "timed out", timeout
    wall = time.perf_counter() - start
    return (
        proc.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        wall,
    )


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def process_tree(top: int) -> list[tuple[int, int]]:
    """Returns (pid, depth) of top and all its descendants, top first."""
    kids = _children()
    out = []
    stack = [(top, 0)]
    while stack:
        pid, depth = stack.pop()
        out.append((pid, depth))
        stack.extend((k, depth + 1) for k in sorted(kids.get(pid, []), reverse=True))
    return out


def memory_of(pid: int) -> dict[str, object] | None:
    """Returns name, command line, RSS and PSS (KiB) of a process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            rollup = f.read()
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    fields = {}
    for line in rollup.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0])
    return {
        "pid": pid,
        "comm": comm,
        "cmdline": cmdline[:120],
        "rss_kib": fields.get("Rss", 0),
        "pss_kib": fields.get("Pss", 0),
    }


def measure_idle(runtime: Runtime, argv: list[str], timeout: float) -> Outcome:
    """Starts the idle workload, waits for "ready", and sums the resident
    memory of the runtime's processes (not its CLI's)."""
    proc = subprocess.Popen(
        runtime.command(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin and proc.stdout
    try:
        line = _readline_with_timeout(proc, timeout)
        if line.strip() != b"ready":
            err = _finish(proc, timeout)
            return Outcome(
                False,
                error=_first_error_line(err.decode(errors="replace"), proc.returncode),
            )
        time.sleep(_IDLE_SETTLE_SECONDS)
        processes = []
        for pid, depth in process_tree(proc.pid):
            if depth == 0 and not runtime.includes_top_process():
                continue
            info = memory_of(pid)
            if info is not None:
                # The name too: cmdline is cut short, and this project's
                # gofer says what it is in its name (runsc-gofer).
                info["role"] = runtime.role(depth, f"{info['comm']} {info['cmdline']}")
                processes.append(info)
        _finish(proc, timeout)
    except (subprocess.TimeoutExpired, TimeoutError):
        _kill_group(proc)
        proc.communicate()
        return Outcome(False, error="timed out")
    if proc.returncode != 0:
        return Outcome(False, error=f"exit status {proc.returncode}")
    rss = sum(int(p["rss_kib"]) for p in processes) / 1024
    pss = sum(int(p["pss_kib"]) for p in processes) / 1024
    return Outcome(True, {"rss_mib": rss, "pss_mib": pss}, processes=processes)


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Closes the idle workload's stdin, waits for it, returns its stderr."""
    assert proc.stdin and proc.stderr
    proc.stdin.close()
    proc.stdin = None
    _, err = proc.communicate(timeout=timeout)
    return err


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise TimeoutError
    return proc.stdout.readline()


def run_once(
    runtime: Runtime, workload: Workload, options: Options, timeout: float
) -> Outcome:
    """Runs one workload once on one runtime."""
    argv = workload.argv(options)
    if workload.kind == "memory":
        return measure_idle(runtime, argv, timeout)
    status, out, err, wall = run_command(runtime.command(argv), timeout)
    if status != 0:
        return Outcome(False, error=_first_error_line(err, status))
    if workload.kind == "wall":
        return Outcome(True, {"wall_ms": wall * 1000})
    figures = parse_figures(out)
    missing = [m.key for m in workload.metrics if m.key not in figures]
    if missing:
        return Outcome(False, error=f"no figure {', '.join(missing)} in output")
    return Outcome(True, figures)


# Results.


@dataclasses.dataclass
class Cell:
    """Cell holds the samples of one metric on one runtime."""

    samples: list[float] = dataclasses.field(default_factory=list)
    error: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def cost_ratio(metric: Metric, value: float | None, base: float | None) -> str:
    """Returns value's cost relative to base: 2.00 is twice as slow (or twice
    the memory) whichever way the metric points."""
    if value is None or base is None or value <= 0 or base <= 0:
        return "-"
    ratio = base / value if metric.higher_is_better else value / base
    return f"{ratio:.2f}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table_rows(
    workloads: Sequence[Workload],
    runtimes: Sequence[str],
    cells: dict[tuple[str, str, str], Cell],
) -> tuple[list[str], list[list[str]]]:
    """Returns the header and rows of the results table."""
    ratio_cols = []
    if "native" in runtimes:
        ratio_cols += [(r, "native") for r in runtimes if r != "native"]
    if "gvisor" in runtimes:
        # runc is no sandbox: only sandboxes are compared with gVisor.
        ratio_cols += [
            (r, "gvisor") for r in runtimes if r not in ("native", "gvisor", "runc")
        ]
    header = ["metric", "unit", *runtimes, *(f"{a}/{b}" for a, b in ratio_cols)]
    rows = []
    for w in workloads:
        for m in w.metrics:
            row = [m.name, m.unit]
            for r in runtimes:
                cell = cells.get((w.name, m.key, r))
                if cell is None:
                    row.append("-")
                elif cell.error and not cell.samples:
                    row.append("unsupported")
                else:
                    row.append(_fmt(cell.median))
            for a, b in ratio_cols:
                ca = cells.get((w.name, m.key, a))
                cb = cells.get((w.name, m.key, b))
                row.append(
                    cost_ratio(m, ca.median if ca else None, cb.median if cb else None)
                )
            rows.append(row)
    return header, rows


def format_table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Renders the table as aligned text or as Markdown."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append(
            "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |"
        )
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    out = []
    for i, r in enumerate([header, *rows]):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# Main.


def runsc_platforms(runsc: str) -> list[str]:
    """Returns the platforms this project's runsc offers (its --platform
    choices), ptrace first; just ptrace if it cannot say."""
    try:
        out = subprocess.run(
            [runsc, "--help"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except OSError:
        return ["ptrace"]
    m = re.search(r"--platform \{([^}]*)\}", out)
    if not m:
        return ["ptrace"]
    found = [p.strip() for p in m.group(1).split(",") if p.strip()]
    return ["ptrace"] + [p for p in found if p != "ptrace"]


def build_runtimes(args: argparse.Namespace) -> list[Runtime]:
    """Returns the runtimes asked for, in the order asked."""
    known: dict[str, Runtime] = {"native": Native()}
    wanted = args.runtimes.split(",") if args.runtimes else []
    platforms = ["ptrace"]
    if not wanted or any(n.startswith("pyvisor") for n in wanted):
        platforms = runsc_platforms(args.runsc)
    for platform in platforms:
        name = "pyvisor" if platform == "ptrace" else f"pyvisor-{platform}"
        known[name] = Runsc(name, args.runsc, [f"--platform={platform}"])
    known["gvisor"] = Runsc(
        "gvisor", args.gvisor, ["--platform=ptrace", "--network=none"]
    )
    known["runc"] = Runc(args.runc)
    for spec in args.custom:
        name, _, cmd = spec.partition("=")
        known[name] = Prefixed(name, shlex.split(cmd))
    names = args.runtimes.split(",") if args.runtimes else list(known)
    out = []
    for name in names:
        if name not in known:
            raise SystemExit(f"unknown runtime {name!r}; known: {', '.join(known)}")
        out.append(known[name])
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parses the harness's command line."""
    p = argparse.ArgumentParser(
        prog="benchmarks",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: "
        + "; ".join(f"{w.name}: {w.description}" for w in WORKLOADS),
    )
    p.add_argument(
        "--runtimes",
        default="",
        help="comma-separated: native,pyvisor[-PLATFORM],gvisor,runc and --custom "
        "names "
        "(default: all; those not installed are skipped)",
    )
    p.add_argument("--workloads", default="", help="comma-separated (default: all)")
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    p.add_argument(
        "--duration",
        type=float,
        default=0.5,
        help="seconds each timed loop inside a workload runs (default 0.5)",
    )
    p.add_argument(
        "--seq-mib", type=int, default=1024, help="seqio file size in MiB (1024)"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="per run, seconds")
    p.add_argument("--json", default="", help="also write all samples here")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--runsc", default=default_runsc(), help="this project's runsc")
    p.add_argument("--gvisor", default=GVISOR, help="gVisor's runsc")
    p.add_argument("--runc", default=shutil.which("runc"), help="runc binary")
    p.add_argument("--python3", default=PYTHON3, help="python3 for `python`")
    p.add_argument(
        "--tmpfs-dir", default="/dev/shm", help="a tmpfs directory (/dev/shm)"
    )
    p.add_argument(
        "--custom",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="an extra runtime that runs `COMMAND PROGRAM ARGS...`",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmarks and prints the table; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    names = args.workloads.split(",") if args.workloads else [w.name for w in WORKLOADS]
    unknown = [n for n in names if n not in WORKLOADS_BY_NAME]
    if unknown:
        raise SystemExit(
            f"unknown workload(s) {', '.join(unknown)}; known: "
            + ", ".join(WORKLOADS_BY_NAME)
        )
    workloads = [WORKLOADS_BY_NAME[n] for n in names]
    options = Options(
        duration=args.duration,
        seq_mib=args.seq_mib,
        tmpfs_dir=args.tmpfs_dir,
        root_file=workload_path("files"),
        python3=args.python3,
    )

    runtimes = []
    for rt in build_runtimes(args):
        why = rt.available()
        if why:
            print(f"benchmarks: skipping {rt.name}: {why}", file=sys.stderr)
            continue
        runtimes.append(rt)

    files = sorted(workload_path(n) for n in WORKLOAD_BINARIES)
    load_before = _loadavg()
    cells: dict[tuple[str, str, str], Cell] = {}
    processes: dict[str, list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="pyvisor-bench-") as workdir:
        for rt in runtimes:
            rt.setup(workdir, files)
        try:
            for rep in range(args.reps):
                for w in workloads:
                    for rt in runtimes:
                        first = cells.get((w.name, w.metrics[0].key, rt.name))
                        if first is not None and first.error and not first.samples:
                            continue  # unsupported: not repeated
                        outcome = run_once(rt, w, options, args.timeout)
                        _record(cells, w, rt.name, outcome)
                        if outcome.processes:
                            processes[rt.name] = outcome.processes
                        status = (
                            "ok" if outcome.ok else f"unsupported ({outcome.error})"
                        )
                        print(
                            f"benchmarks: rep {rep + 1}/{args.reps} {w.name:12} "
                            f"{rt.name:8} {status}",
                            file=sys.stderr,
                            flush=True,
                        )
        finally:
            for rt in runtimes:
                rt.cleanup()

    load_after = _loadavg()
    names_rt = [rt.name for rt in runtimes]
    header, rows = table_rows(workloads, names_rt, cells)
    print(format_table(header, rows, args.markdown))
    # Other work on the machine slows every runtime, sandboxes most.
    print(
        f"\n{os.cpu_count()} CPUs; load average {load_before} before, "
        f"{load_after} after"
    )
    errors = sorted(
        {
            (w, r, c.error)
            for (w, _k, r), c in cells.items()
            if c.error and not c.samples
        }
    )
    if errors:
        print("\nunsupported:")
        for w, r, e in errors:
            print(f"  {w} on {r}: {e}")
    if processes:
        print("\nidle memory by process (PSS MiB, last repetition):")
        for r, procs in processes.items():
            by_role: dict[str, float] = {}
            for p in procs:
                role = str(p["role"])
                by_role[role] = by_role.get(role, 0.0) + int(p["pss_kib"]) / 1024
            parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_role.items()))
            print(f"  {r}: {parts} ({len(procs)} processes)")

    if args.json:
        _write_json(
            args,
            workloads,
            names_rt,
            cells,
            processes,
            header,
            rows,
            (load_before, load_after),
        )
    return 0


def _loadavg() -> str:
    """Returns the 1-minute load average of the machine, as /proc says."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def _record(
    cells: dict[tuple[str, str, str], Cell], w: Workload, rt: str, outcome: Outcome
) -> None:
    for m in w.metrics:
        cell = cells.setdefault((w.name, m.key, rt), Cell())
        if outcome.ok:
            cell.samples.append(outcome.figures[m.key])
        else:
            cell.error = outcome.error


def _write_json(
    args: argparse.Namespace,
    workloads: Sequence[Workload],
    runtimes: list[str],
    cells: dict[tuple[str, str, str], Cell],
    processes: dict[str, list[dict[str, object]]],
    header: list[str],
    rows: list[list[str]],
    load: tuple[str, str],
) -> None:
    results = []
    for w in workloads:
        for m in w.metrics:
            for r in runtimes:
                cell = cells.get((w.name, m.key, r))
                if cell is None:
                    continue
                results.append(
                    {
                        "workload": w.name,
                        "metric": m.name,
                        "key": m.key,
                        "unit": m.unit,
                        "higher_is_better": m.higher_is_better,
                        "runtime": r,
                        "samples": cell.samples,
                        "median": cell.median,
                        "supported": bool(cell.samples),
                        "error": cell.error,
                    }
                )
    doc = {
        "reps": args.reps,
        "duration": args.duration,
        "seq_mib": args.seq_mib,
        "runtimes": runtimes,
        "results": results,
        "idle_processes": processes,
        "table": {"header": header, "rows": rows},
        "cpus": os.cpu_count(),
        "load_average": {"before": load[0], "after": load[1]},
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
