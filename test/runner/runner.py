"""Runs one system-call test binary natively or under runsc, for Bazel.

The syscall_test macro (test/runner/defs.bzl) makes two tests of every test
binary, and both run this script:

    runner.py --platform=native BINARY [GTEST_FLAGS...]
    runner.py --platform=ptrace --runsc=runsc/runsc BINARY [GTEST_FLAGS...]

Natively the binary runs directly. Under a platform it runs inside one
sandbox, `runsc --platform=P --root=... --debug --debug-log=DIR/ do BINARY`,
with RUNSC_TEST_PLATFORM=P in its environment so that tests can skip what the
sandbox cannot do yet. All test cases of the binary share that sandbox.

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

The run gets a deadline shorter than Bazel's (TEST_TIMEOUT), so that on a
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
        if m and m.group(2) == f"{current.suite}.{current.name}":
            current.result = m.group(1)
            current.millis = int(m.group(3))
            current = None
            continue
        current.output.append(line)
    return cases


_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    return _XML_INVALID.sub("?", s)


def junit_xml(
    cases: list[TestCase], program: str, status_note: str, output_tail: list[str]
) -> bytes:
    """Returns a JUnit XML report of cases, as googletest would write it.

    A case that never ended is reported failed with status_note (how the
    program ended). If no case ran at all and status_note is set, one case
    named after the program carries the failure and the output's tail.
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
                message = "failed" if c.result == "FAILED" else status_note
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


def describe_status(returncode: int | None, timed_out: bool, timeout: float) -> str:
    """Returns how the program ended, in words."""
    if timed_out:
        return f"timed out after {timeout:.0f}s (killed by the runner)"
    if returncode is None:
        return "did not finish"
    if returncode < 0:
        return f"killed by signal {-returncode}"
    if returncode > 128:
        return f"exited with status {returncode} (signal {returncode - 128}?)"
    return f"exited with status {returncode}"


@dataclasses.dataclass(slots=True)
class RunResult:
    """RunResult is what running the test program produced."""

    returncode: int | None
    timed_out: bool
    lines: list[str]


def _kill_group(proc: subprocess.Popen) -> None:
    """Ends the process group that proc leads (started with a new session by
    run): SIGTERM, then SIGKILL after a grace period."""
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


def run(cmd: list[str], env: dict[str, str], timeout: float | None) -> RunResult:
    """Runs cmd with stdin from /dev/null, copying its stdout and stderr (as
    one stream) to ours while keeping the lines."""
    lines: list[str] = []
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
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        log(f"deadline of {timeout:.0f}s passed; killing process group {proc.pid}")
        _kill_group(proc)
    # A descendant that outlives the program may hold the pipe open; do not
    # wait for it forever.
    reader.join(_DRAIN_SECONDS)
    if reader.is_alive():
        log("output still open after exit; ending the process group")
        _kill_group(proc)
        reader.join(_DRAIN_SECONDS)
    return RunResult(proc.returncode, timed_out, lines)


def print_log_tail(log_dir: str) -> None:
    """Prints the end of the newest debug logs in log_dir."""
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
    for path in files[:_LOG_TAIL_FILES]:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-_LOG_TAIL_LINES:]
        print(
            f"\n===== last {len(tail)} lines of {path} =====",
            file=sys.stderr,
        )
        sys.stderr.writelines(tail)
        print(f"===== end of {os.path.basename(path)} =====", file=sys.stderr)
    if len(files) > _LOG_TAIL_FILES:
        log(f"{len(files) - _LOG_TAIL_FILES} more debug logs in {log_dir}")
    sys.stderr.flush()


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
        "--timeout", type=float, default=None, help="seconds (default: from Bazel)"
    )
    p.add_argument("binary", help="test binary (runfiles path)")
    p.add_argument("gtest_args", nargs=argparse.REMAINDER)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the test binary and returns the exit status for Bazel."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    native = args.platform == "native"
    binary = runfile(args.binary)
    env = test_env(dict(os.environ), args.platform)
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

    root = ""
    remove_root = False
    log_dir = ""
    if native:
        cmd = [binary, *gtest_args]
    else:
        if not args.runsc:
            log("--runsc is required with a sandbox platform")
            return 2
        runsc = runfile(args.runsc)
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.mkdtemp(
            prefix="runsc-test-logs-"
        )
        log_dir = os.path.join(outputs, "runsc_logs")
        os.makedirs(log_dir, exist_ok=True)
        root, remove_root = state_dir(dict(os.environ))
        cmd = [
            runsc,
            f"--platform={args.platform}",
            f"--root={root}",
            "--debug",
            f"--debug-log={log_dir}/",
        ]
        if args.strace:
            cmd.append("--strace")
        cmd += args.runsc_arg
        cmd += ["do", binary, *gtest_args]

    log(f"running: {' '.join(cmd)}")
    start = time.monotonic()
    try:
        result = run(cmd, env, timeout)
    finally:
        if remove_root:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - start
    note = describe_status(result.returncode, result.timed_out, timeout or 0)
    failed = result.timed_out or result.returncode != 0
    log(f"{os.path.basename(binary)} {note} in {elapsed:.1f}s")

    if xml_mode == "runner":
        cases = parse_gtest_output(result.lines)
        with open(xml_path, "wb") as f:
            f.write(
                junit_xml(
                    cases,
                    os.path.basename(binary),
                    note if failed else "",
                    result.lines[-50:],
                )
            )

    if failed and log_dir:
        print_log_tail(log_dir)
        log(f"debug logs: {log_dir} (outputs.zip in the test's testlogs)")
    if result.timed_out:
        return 1
    if result.returncode is None or result.returncode < 0:
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
