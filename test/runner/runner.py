"""Runs one system-call test binary natively or under runsc, for Bazel.

The syscall_test macro (test/runner/defs.bzl) makes two tests of every test
binary, and both run this script:

    runner.py --platform=native BINARY [GTEST_FLAGS...]
    runner.py --platform=ptrace --runsc=runsc/runsc BINARY [GTEST_FLAGS...]

Natively the binary runs directly. Under a platform it runs inside one
sandbox, `runsc --platform=P --root=... --debug --debug-log=DIR/ do BINARY`,
with RUNSC_TEST_PLATFORM=P in its environment so that tests can skip what the
sandbox cannot do yet. All test cases of the binary share that sandbox.

One sandbox for all cases keeps the suite fast, but a case that crashes the
sandbox or hangs would hide the results of every case after it. So when a run
ends inside a case (the case started and never finished), the runner records
that case as failed, prints the end of the debug log, and runs the cases that
had not run yet in a fresh sandbox. A run that prints nothing for
--stall-timeout seconds counts as hung.

Bazel's test protocol is spoken here rather than by googletest inside the
sandbox, because the sandbox's root file system is a copy-on-write overlay
held in memory: a file that the test program writes there never reaches the
host. So:

- sharding: the runner touches TEST_SHARD_STATUS_FILE itself and passes
  TEST_SHARD_INDEX and TEST_TOTAL_SHARDS to googletest as GTEST_SHARD_INDEX
  and GTEST_TOTAL_SHARDS;
- XML: natively googletest writes XML_OUTPUT_FILE (--gtest_output=xml:...);
  under runsc the runner writes it from googletest's console output;
- the premature-exit file: left to Bazel, and hidden from the sandboxed
  program, which could not create it.

Every run gets a deadline shorter than Bazel's (TEST_TIMEOUT), so that on a
hang the runner still kills the sandbox and prints the end of its debug log,
which is written into TEST_UNDECLARED_OUTPUTS_DIR (outputs.zip in the test's
testlogs directory) for a failing CI run to be diagnosed.

This file imports nothing from the project: the runfiles tree has a `test`
directory that would shadow the standard library's `test` package.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

# PLATFORM_ENV is the variable through which a test learns that it runs in the
# sandbox, and on which platform (test/util/test_util.h).
PLATFORM_ENV = "RUNSC_TEST_PLATFORM"
# The sandbox's --network, told to the test program (test_util.h) when the
# runner was asked for one.
NETWORK_ENV = "RUNSC_TEST_NETWORK"

# Variables that make googletest write files itself. Under runsc the runner
# does that work instead (see the module docstring).
_FILE_PROTOCOL_ENV = (
    "XML_OUTPUT_FILE",
    "GTEST_OUTPUT",
    "TEST_PREMATURE_EXIT_FILE",
    "TEST_SHARD_STATUS_FILE",
    "GTEST_SHARD_STATUS_FILE",
)

# Unix socket paths are limited to 108 bytes; a state directory with a
# longer path than this leaves too little room for the sockets in it.
_MAX_ROOT_LEN = 64

# Debug-log lines printed per file when a run fails, and how many files.
_LOG_TAIL_LINES = 150
_LOG_TAIL_FILES = 3

# How long a killed run gets to exit before SIGKILL, and how long the output
# reader may lag behind the exit of the process.
_KILL_GRACE_SECONDS = 5.0
_DRAIN_SECONDS = 5.0

# Fresh sandboxes after crashes, at most, and the least time worth starting
# one with.
_MAX_RESUMES = 20
_MIN_RESUME_SECONDS = 5.0


def log(msg: str) -> None:
    """Writes a runner message to stderr."""
    print(f"runner: {msg}", file=sys.stderr, flush=True)


def runfile(path: str) -> str:
    """Returns the absolute path of `path`, a runfiles path relative to the
    workspace ($(rootpath) in Bazel), or `path` itself if it exists as
    given."""
    if os.path.isabs(path):
        return path
    workspace = os.environ.get("TEST_WORKSPACE", "pyvisor")
    for var in ("TEST_SRCDIR", "RUNFILES_DIR", "PYTHON_RUNFILES"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, workspace, path)
            if os.path.exists(candidate):
                return os.path.abspath(candidate)
    return os.path.abspath(path)


def default_timeout(env: dict[str, str]) -> float | None:
    """Returns the runner's deadline: Bazel's TEST_TIMEOUT less a tenth (at
    least 5 seconds), or None outside Bazel."""
    total = env.get("TEST_TIMEOUT")
    if not total:
        return None
    seconds = float(total)
    return max(1.0, seconds - max(5.0, seconds / 10))


def default_stall_timeout(timeout: float | None) -> float | None:
    """Returns how long a sandboxed run may stay silent: a quarter of the
    deadline, at least 10 seconds."""
    if timeout is None:
        return None
    return max(10.0, timeout / 4)


def test_env(base: dict[str, str], platform: str) -> dict[str, str]:
    """Returns the environment for the test program (and runsc, which hands
    its own environment to the program)."""
    env = dict(base)
    env.pop(PLATFORM_ENV, None)
    shards = env.get("TEST_TOTAL_SHARDS")
    if shards and int(shards) > 0:
        env["GTEST_TOTAL_SHARDS"] = shards
        env["GTEST_SHARD_INDEX"] = env.get("TEST_SHARD_INDEX", "0")
    if platform != "native":
        env[PLATFORM_ENV] = platform
        for var in _FILE_PROTOCOL_ENV:
            env.pop(var, None)
    return env


def touch_shard_status_file(env: dict[str, str]) -> None:
    """Tells Bazel that the test honours sharding, as googletest would."""
    path = env.get("TEST_SHARD_STATUS_FILE")
    if path and env.get("TEST_TOTAL_SHARDS"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w"):
            pass


@dataclasses.dataclass(slots=True)
class TestCase:
    """TestCase is one googletest case as seen in its console output."""

    suite: str
    name: str
    result: str = ""  # "OK", "FAILED", "SKIPPED", or "" if it never ended.
    millis: int = 0
    output: list[str] = dataclasses.field(default_factory=list)
    # For a case that never ended: how the program ended.
    note: str = ""

    @property
    def full_name(self) -> str:
        """Returns Suite.Name, as --gtest_filter takes it."""
        return f"{self.suite}.{self.name}"

    @property
    def passed(self) -> bool:
        """Reports whether the case passed or was skipped."""
        return self.result in ("OK", "SKIPPED")


_RUN_RE = re.compile(r"^\[ RUN      \] (\S+)$")
_END_RE = re.compile(
    r"^\[ +(OK|FAILED|SKIPPED) +\] (\S+?)(?:, where .*)? \((\d+) ms\)$"
)


def parse_gtest_output(lines: list[str]) -> list[TestCase]:
    """Returns the cases, in order, that googletest's console output reports
    (--gtest_color=no, the default when the output is not a terminal)."""
    cases: list[TestCase] = []
    current: TestCase | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        m = _RUN_RE.match(line)
        if m:
            suite, _, name = m.group(1).partition(".")
            current = TestCase(suite=suite, name=name)
            cases.append(current)
            continue
        if current is None:
            continue
        m = _END_RE.match(line)
        if m and m.group(2) == current.full_name:
            current.result = m.group(1)
            current.millis = int(m.group(3))
            current = None
            continue
        current.output.append(line)
    return cases


def parse_test_list(lines: list[str]) -> list[str]:
    """Returns the Suite.Name of every case in --gtest_list_tests output."""
    names = []
    suite = ""
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        text = line.split("  #", 1)[0].rstrip()
        if not line.startswith(" "):
            suite = text
        elif suite:
            names.append(suite + text.strip())
    return names


def shard_select(
    names: list[str], index: int, total: int, also_disabled: bool = False
) -> list[str]:
    """Returns the names that googletest runs on shard `index` of `total`: it
    numbers the runnable cases in order and keeps those whose number modulo
    total is index (gtest.cc, FilterTests)."""
    out = []
    runnable = 0
    for name in names:
        suite, _, case = name.partition(".")
        disabled = suite.split("/")[-1].startswith("DISABLED_") or case.startswith(
            "DISABLED_"
        )
        if disabled and not also_disabled:
            continue
        if runnable % total == index:
            out.append(name)
        runnable += 1
    return out


_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    return _XML_INVALID.sub("?", s)


def junit_xml(
    cases: list[TestCase], program: str, status_note: str, output_tail: list[str]
) -> bytes:
    """Returns a JUnit XML report of cases, as googletest would write it.

    A case that never ended is reported failed with its note (or status_note,
    how the program ended). If no case ran at all and status_note is set, one
    case named after the program carries the failure and the output's tail.
    """
    suites: dict[str, list[TestCase]] = {}
    for c in cases:
        suites.setdefault(c.suite, []).append(c)

    root = ET.Element("testsuites", name="AllTests")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for suite, members in suites.items():
        el = ET.SubElement(root, "testsuite", name=suite)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for c in members:
            tc = ET.SubElement(
                el,
                "testcase",
                name=c.name,
                classname=suite,
                status="run",
                result="skipped" if c.result == "SKIPPED" else "completed",
                time=f"{c.millis / 1000:.3f}",
            )
            counts["tests"] += 1
            text = _xml_text("\n".join(c.output))
            if c.result == "SKIPPED":
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", message=_xml_text(text[:200])).text = text
            elif c.result != "OK":
                counts["failures"] += 1
                message = "failed" if c.result == "FAILED" else c.note or status_note
                ET.SubElement(tc, "failure", message=_xml_text(message)).text = text
        for k, v in counts.items():
            el.set(k, str(v))
            totals[k] += v
        el.set("errors", "0")

    if not cases and status_note:
        el = ET.SubElement(
            root, "testsuite", name=program, tests="1", failures="1", errors="0"
        )
        tc = ET.SubElement(el, "testcase", name=program, classname=program)
        ET.SubElement(tc, "failure", message=_xml_text(status_note)).text = _xml_text(
            "\n".join(output_tail)
        )
        totals["tests"] += 1
        totals["failures"] += 1

    for k, v in totals.items():
        root.set(k, str(v))
    root.set("errors", "0")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@dataclasses.dataclass(slots=True)
class RunResult:
    """RunResult is what running the test program produced."""

    returncode: int | None
    timed_out: bool
    lines: list[str]
    # Killed for printing nothing for too long.
    stalled: bool = False
    # Seconds that the timeout or stall limit was.
    limit: float = 0.0

    @property
    def ok(self) -> bool:
        """Reports whether the program exited with status 0 by itself."""
        return not self.timed_out and not self.stalled and self.returncode == 0

    def describe(self) -> str:
        """Returns how the program ended, in words."""
        if self.stalled:
            return f"printed nothing for {self.limit:.0f}s (hung; killed by the runner)"
        if self.timed_out:
            return f"timed out after {self.limit:.0f}s (killed by the runner)"
        code = self.returncode
        if code is None:
            return "did not finish"
        if code < 0:
            return f"killed by signal {-code}"
        if code > 128:
            return f"exited with status {code} (signal {code - 128}?)"
        return f"exited with status {code}"


def _kill_group(proc: subprocess.Popen) -> None:
    """Ends the process group that proc leads (run starts it in a new
    session): SIGTERM, then SIGKILL after a grace period."""
    for signo, wait in ((signal.SIGTERM, _KILL_GRACE_SECONDS), (signal.SIGKILL, 0)):
        try:
            os.killpg(proc.pid, signo)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait or None)
            return
        except subprocess.TimeoutExpired:
            continue


def run(
    cmd: list[str],
    env: dict[str, str],
    timeout: float | None,
    stall_timeout: float | None = None,
) -> RunResult:
    """Runs cmd with stdin from /dev/null, copying its stdout and stderr (as
    one stream) to ours while keeping the lines. Kills it after timeout
    seconds, or after stall_timeout seconds without output."""
    lines: list[str] = []
    last_output = [time.monotonic()]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for raw in iter(stdout.readline, b""):
            last_output[0] = time.monotonic()
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    start = time.monotonic()
    timed_out = stalled = False
    limit = 0.0
    while True:
        try:
            proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            timed_out, limit = True, timeout
        elif stall_timeout is not None and now - last_output[0] >= stall_timeout:
            stalled, limit = True, stall_timeout
        else:
            continue
        log(
            f"{'deadline' if timed_out else 'stall limit'} of {limit:.0f}s passed; "
            f"ending process group {proc.pid}"
        )
        _kill_group(proc)
        break
    # A descendant that outlives the program may hold the pipe open; do not
    # wait for it forever.
    reader.join(_DRAIN_SECONDS)
    if reader.is_alive():
        log("output still open after exit; ending the process group")
        _kill_group(proc)
        reader.join(_DRAIN_SECONDS)
    return RunResult(proc.returncode, timed_out, list(lines), stalled, limit)


def list_tests(binary: str, gtest_args: list[str], env: dict[str, str]) -> list[str]:
    """Returns the cases that the binary would run with gtest_args and the
    sharding in env, by listing them natively (listing runs no test)."""
    listing_env = {
        k: v
        for k, v in env.items()
        if k not in ("GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS", PLATFORM_ENV)
    }
    out = subprocess.run(
        [binary, *gtest_args, "--gtest_list_tests"],
        env=listing_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=True,
    )
    names = parse_test_list(out.stdout.decode("utf-8", "replace").splitlines())
    total = int(env.get("GTEST_TOTAL_SHARDS", "0") or 0)
    if total > 0:
        also = any(a.startswith("--gtest_also_run_disabled_tests") for a in gtest_args)
        names = shard_select(names, int(env.get("GTEST_SHARD_INDEX", "0")), total, also)
    return names


def print_log_tail(log_dir: str, newest: int = _LOG_TAIL_FILES) -> None:
    """Prints the end of the newest non-empty debug logs in log_dir."""
    try:
        names = [os.path.join(log_dir, n) for n in os.listdir(log_dir)]
    except OSError as e:
        log(f"no debug log: {e}")
        return
    files = sorted(
        (p for p in names if os.path.isfile(p) and os.path.getsize(p) > 0),
        key=os.path.getmtime,
        reverse=True,
    )
    if not files:
        log(f"no debug log in {log_dir}")
        return
    for path in files[:newest]:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-_LOG_TAIL_LINES:]
        print(f"\n===== last {len(tail)} lines of {path} =====", file=sys.stderr)
        sys.stderr.writelines(tail)
        print(f"===== end of {os.path.basename(path)} =====", file=sys.stderr)
    sys.stderr.flush()


def fs_root(value: str, env: dict[str, str]) -> str:
    """Returns FS_TEST_ROOT for --fs-root: value itself, or for 'tmpdir' a
    directory under TEST_TMPDIR (made here)."""
    if value != "tmpdir":
        return value
    base = env.get("TEST_TMPDIR") or tempfile.gettempdir()
    root = os.path.join(base, "fs-root")
    os.makedirs(root, exist_ok=True)
    return root


def state_dir(env: dict[str, str]) -> tuple[str, bool]:
    """Returns runsc's --root and whether the runner must remove it: under
    TEST_TMPDIR when that path is short enough for Unix sockets, else a new
    directory in /tmp."""
    base = env.get("TEST_TMPDIR", "")
    if base and len(base) <= _MAX_ROOT_LEN:
        root = os.path.join(base, "runsc-root")
        os.makedirs(root, exist_ok=True)
        return root, False
    return tempfile.mkdtemp(prefix="runsc-root-"), True


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parses the runner's flags; what follows the binary goes to it."""
    p = argparse.ArgumentParser(
        prog="runner", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    p.add_argument("--platform", default="native", help="native, or a runsc platform")
    p.add_argument("--runsc", default="", help="runsc binary (runfiles path)")
    p.add_argument(
        "--runsc-arg",
        action="append",
        default=[],
        help="extra global flag for runsc (repeatable), e.g. --runsc-arg=--strace",
    )
    p.add_argument(
        "--strace",
        action="store_true",
        default=bool(os.environ.get("RUNSC_TEST_STRACE")),
        help="pass --strace to runsc (also: RUNSC_TEST_STRACE=1)",
    )
    p.add_argument(
        "--xml",
        choices=("auto", "gtest", "runner", "none"),
        default="auto",
        help="who writes XML_OUTPUT_FILE: googletest (native default) or the "
        "runner (default under runsc)",
    )
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="under runsc, do not run the remaining cases after a crash",
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds (default: from Bazel)"
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=None,
        help="seconds without output after which a sandboxed run counts as "
        "hung (default: a quarter of the deadline, at least 10)",
    )
    p.add_argument(
        "--fs-root",
        default="",
        help="where file system tests make their files (FS_TEST_ROOT): a "
        "path, or 'tmpdir' for a directory under TEST_TMPDIR, which in the "
        "sandbox is on the container's root filesystem",
    )
    p.add_argument(
        "--network",
        default="",
        help="runsc's --network for the sandbox (none, host, sandbox); the "
        "program learns it from RUNSC_TEST_NETWORK",
    )
    p.add_argument("binary", help="test binary (runfiles path)")
    p.add_argument("gtest_args", nargs=argparse.REMAINDER)
    return p.parse_args(argv)


@dataclasses.dataclass(slots=True)
class Outcome:
    """Outcome is what all the runs of the binary produced."""

    cases: list[TestCase]
    last: RunResult
    # Runs that ended inside a case.
    crashes: int = 0


def run_sandboxed(
    base_cmd: list[str],
    binary: str,
    gtest_args: list[str],
    env: dict[str, str],
    timeout: float | None,
    stall_timeout: float | None,
    log_dir: str,
    resume: bool,
) -> Outcome:
    """Runs the binary's cases in one sandbox, and the cases left after a
    crash in fresh ones (see the module docstring)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cases: list[TestCase] = []
    crashes = 0
    expected: list[str] | None = None
    run_env = env
    extra: list[str] = []
    while True:
        left = None if deadline is None else max(1.0, deadline - time.monotonic())
        result = run(
            [*base_cmd, binary, *gtest_args, *extra], run_env, left, stall_timeout
        )
        these = parse_gtest_output(result.lines)
        cases += these
        if result.ok:
            return Outcome(cases, result, crashes)

        log(f"{os.path.basename(binary)} {result.describe()}")
        print_log_tail(log_dir, newest=1)
        unfinished = these[-1] if these and not these[-1].result else None
        if unfinished is None:
            return Outcome(cases, result, crashes)
        crashes += 1
        unfinished.note = f"the sandbox {result.describe()} during this case"
        if not resume or crashes > _MAX_RESUMES:
            return Outcome(cases, result, crashes)
        if deadline is not None and deadline - time.monotonic() < _MIN_RESUME_SECONDS:
            log("too little time left to resume")
            return Outcome(cases, result, crashes)

        if expected is None:
            try:
                expected = list_tests(binary, gtest_args, env)
            except (OSError, subprocess.SubprocessError) as e:
                log(f"cannot list the cases to resume: {e}")
                return Outcome(cases, result, crashes)
        done = {c.full_name for c in cases}
        remaining = [n for n in expected if n not in done]
        if not remaining:
            return Outcome(cases, result, crashes)
        log(
            f"{unfinished.full_name} did not finish; running the "
            f"{len(remaining)} cases left in a fresh sandbox"
        )
        # The cases are named one by one, so sharding is already applied.
        run_env = {
            k: v
            for k, v in env.items()
            if k not in ("GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS")
        }
        extra = ["--gtest_filter=" + ":".join(remaining)]


def main(argv: list[str] | None = None) -> int:
    """Runs the test binary and returns the exit status for Bazel."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    native = args.platform == "native"
    binary = runfile(args.binary)
    env = test_env(dict(os.environ), args.platform)
    if args.fs_root:
        env["FS_TEST_ROOT"] = fs_root(args.fs_root, dict(os.environ))
    env.pop(NETWORK_ENV, None)
    if args.network and not native:
        env[NETWORK_ENV] = args.network
    timeout = args.timeout if args.timeout else default_timeout(dict(os.environ))
    xml_path = os.environ.get("XML_OUTPUT_FILE", "")
    xml_mode = args.xml
    if xml_mode == "auto":
        xml_mode = "gtest" if native else "runner"
    if not xml_path:
        xml_mode = "none"

    touch_shard_status_file(dict(os.environ))
    env.pop("TEST_SHARD_STATUS_FILE", None)
    gtest_args = list(args.gtest_args)
    if xml_mode == "gtest":
        gtest_args.append(f"--gtest_output=xml:{xml_path}")
    elif xml_mode == "runner":
        # The console output is what the XML is made from.
        gtest_args.append("--gtest_color=no")

    if native:
        log(f"running: {' '.join([binary, *gtest_args])}")
        result = run([binary, *gtest_args], env, timeout)
        log(f"{os.path.basename(binary)} {result.describe()}")
        outcome = Outcome(parse_gtest_output(result.lines), result)
    else:
        if not args.runsc:
            log("--runsc is required with a sandbox platform")
            return 2
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.mkdtemp(
            prefix="runsc-test-logs-"
        )
        log_dir = os.path.join(outputs, "runsc_logs")
        os.makedirs(log_dir, exist_ok=True)
        root, remove_root = state_dir(dict(os.environ))
        base_cmd = [
            runfile(args.runsc),
            f"--platform={args.platform}",
            f"--root={root}",
            "--debug",
            f"--debug-log={log_dir}/",
        ]
        if args.network:
            base_cmd.append(f"--network={args.network}")
        if args.strace:
            base_cmd.append("--strace")
        base_cmd += [*args.runsc_arg, "do"]
        log(f"running: {' '.join([*base_cmd, binary, *gtest_args])}")
        stall = (
            args.stall_timeout if args.stall_timeout else default_stall_timeout(timeout)
        )
        try:
            outcome = run_sandboxed(
                base_cmd,
                binary,
                gtest_args,
                env,
                timeout,
                stall,
                log_dir,
                args.resume,
            )
        finally:
            if remove_root:
                shutil.rmtree(root, ignore_errors=True)
        log(f"debug logs: {log_dir} (outputs.zip in the test's testlogs)")

    failed_cases = [c for c in outcome.cases if not c.passed]
    failed = bool(failed_cases) or not outcome.last.ok
    if xml_mode == "runner":
        with open(xml_path, "wb") as f:
            f.write(
                junit_xml(
                    outcome.cases,
                    os.path.basename(binary),
                    outcome.last.describe() if failed else "",
                    outcome.last.lines[-50:],
                )
            )
    if outcome.crashes:
        log(f"{outcome.crashes} run(s) ended inside a case")
    if failed_cases:
        log(
            f"{len(failed_cases)} failed: {' '.join(c.full_name for c in failed_cases)}"
        )
    if not failed:
        return 0
    last = outcome.last
    if last.timed_out or last.stalled or not last.returncode or last.returncode < 0:
        return 1
    return last.returncode


if __name__ == "__main__":
    sys.exit(main())
