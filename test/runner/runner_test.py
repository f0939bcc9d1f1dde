"""Tests of the syscall-test runner: output parsing, XML, environment, and
running real processes (no sandbox)."""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ET

import pytest

# runner.py is loaded by path: importing it as test.runner.runner would go
# through the `test` package, which is the standard library's.
_spec = importlib.util.spec_from_file_location(
    "syscall_test_runner", os.path.join(os.path.dirname(__file__), "runner.py")
)
assert _spec is not None and _spec.loader is not None
runner = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = runner
_spec.loader.exec_module(runner)

GTEST_OUTPUT = """\
Running main() from test_main.cc
[==========] Running 4 tests from 2 test suites.
[----------] 2 tests from Uname
[ RUN      ] Uname.Sysname
[       OK ] Uname.Sysname (0 ms)
[ RUN      ] Uname.Bad
test.cc:12: Failure
Expected: succeeds
  Actual: -1
[  FAILED  ] Uname.Bad (3 ms)
[----------] 2 tests from Params/Mmap
[ RUN      ] Params/Mmap.Len/0
[  SKIPPED ] Params/Mmap.Len/0, where GetParam() = 4 (1 ms)
[ RUN      ] Params/Mmap.Len/1
partial output
"""


def test_parse_gtest_output() -> None:
    cases = runner.parse_gtest_output(GTEST_OUTPUT.splitlines(keepends=True))
    assert [(c.suite, c.name, c.result, c.millis) for c in cases] == [
        ("Uname", "Sysname", "OK", 0),
        ("Uname", "Bad", "FAILED", 3),
        ("Params/Mmap", "Len/0", "SKIPPED", 1),
        ("Params/Mmap", "Len/1", "", 0),
    ]
    assert cases[1].output == [
        "test.cc:12: Failure",
        "Expected: succeeds",
        "  Actual: -1",
    ]
    assert cases[3].output == ["partial output"]


def test_summary_lines_are_not_results() -> None:
    out = [
        "[ RUN      ] A.B\n",
        "[  FAILED  ] A.B (0 ms)\n",
        "[  FAILED  ] 1 test, listed below:\n",
        "[  FAILED  ] A.B\n",
    ]
    cases = runner.parse_gtest_output(out)
    assert len(cases) == 1
    assert cases[0].output == []


def test_junit_xml() -> None:
    cases = runner.parse_gtest_output(GTEST_OUTPUT.splitlines())
    root = ET.fromstring(
        runner.junit_xml(cases, "uname_test", "killed by signal 9", [])
    )
    assert root.get("tests") == "4"
    assert root.get("failures") == "2"
    assert root.get("skipped") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["Uname", "Params/Mmap"]
    unfinished = suites[1].findall("testcase")[1]
    assert unfinished.find("failure").get("message") == "killed by signal 9"
    assert suites[0].findall("testcase")[1].find("failure").text.startswith("test.cc")


def test_junit_xml_no_cases() -> None:
    root = ET.fromstring(
        runner.junit_xml([], "prog", "exited with status 1", ["boom\x01"])
    )
    assert root.get("failures") == "1"
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == "exited with status 1"
    assert failure.text == "boom?"


def test_env_native() -> None:
    base = {
        "RUNSC_TEST_PLATFORM": "stale",
        "TEST_TOTAL_SHARDS": "3",
        "TEST_SHARD_INDEX": "1",
        "XML_OUTPUT_FILE": "/x.xml",
    }
    env = runner.test_env(base, "native")
    assert "RUNSC_TEST_PLATFORM" not in env
    assert env["GTEST_TOTAL_SHARDS"] == "3"
    assert env["GTEST_SHARD_INDEX"] == "1"
    assert env["XML_OUTPUT_FILE"] == "/x.xml"


def test_env_sandbox() -> None:
    base = {
        "TEST_PREMATURE_EXIT_FILE": "/p",
        "TEST_SHARD_STATUS_FILE": "/s",
        "XML_OUTPUT_FILE": "/x.xml",
        "PATH": "/bin",
    }
    env = runner.test_env(base, "ptrace")
    assert env == {"RUNSC_TEST_PLATFORM": "ptrace", "PATH": "/bin"}


def test_default_timeout() -> None:
    assert runner.default_timeout({}) is None
    assert runner.default_timeout({"TEST_TIMEOUT": "300"}) == 270
    assert runner.default_timeout({"TEST_TIMEOUT": "20"}) == 15


def test_describe() -> None:
    assert runner.RunResult(0, False, []).describe() == "exited with status 0"
    assert runner.RunResult(-9, False, []).describe() == "killed by signal 9"
    assert "signal 11" in runner.RunResult(139, False, []).describe()
    assert "timed out" in runner.RunResult(None, True, [], limit=10).describe()
    assert "hung" in runner.RunResult(None, False, [], stalled=True).describe()


def test_parse_test_list() -> None:
    listing = [
        "UnameTest.\n",
        "  Fields\n",
        "  Stable\n",
        "SharedAndPrivate/FutexTest.  # TypeParam = int\n",
        "  Wait/Shared  # GetParam() = false\n",
        "  Wait/Private  # GetParam() = true\n",
    ]
    assert runner.parse_test_list(listing) == [
        "UnameTest.Fields",
        "UnameTest.Stable",
        "SharedAndPrivate/FutexTest.Wait/Shared",
        "SharedAndPrivate/FutexTest.Wait/Private",
    ]


def test_shard_select() -> None:
    names = ["A.a", "A.DISABLED_b", "A.c", "DISABLED_B.d", "A.e", "A.f"]
    assert runner.shard_select(names, 0, 2) == ["A.a", "A.e"]
    assert runner.shard_select(names, 1, 2) == ["A.c", "A.f"]
    assert runner.shard_select(names, 1, 2, also_disabled=True) == [
        "A.DISABLED_b",
        "DISABLED_B.d",
        "A.f",
    ]


def test_run_copies_output() -> None:
    result = runner.run(
        [sys.executable, "-c", "import sys; print('a'); print('b', file=sys.stderr)"],
        dict(os.environ),
        10,
    )
    assert result.returncode == 0
    assert not result.timed_out
    assert sorted(result.lines) == ["a\n", "b\n"]


def test_run_times_out() -> None:
    result = runner.run(
        [sys.executable, "-c", "import time; print('x', flush=True); time.sleep(60)"],
        dict(os.environ),
        0.5,
    )
    assert result.timed_out
    assert result.returncode is not None
    assert result.lines == ["x\n"]


def test_print_log_tail(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runsc.log.boot").write_text("".join(f"line {i}\n" for i in range(500)))
    runner.print_log_tail(str(tmp_path))
    err = capsys.readouterr().err
    assert "line 499" in err
    assert "line 349\n" not in err
    assert "line 350\n" in err


def test_main_native_writes_no_xml_itself(tmp_path, monkeypatch) -> None:
    prog = tmp_path / "prog.sh"
    prog.write_text('#!/bin/sh\necho "[ RUN      ] A.B"; echo "$@"; exit 3\n')
    prog.chmod(0o755)
    shard = tmp_path / "shard"
    monkeypatch.setenv("TEST_TOTAL_SHARDS", "2")
    monkeypatch.setenv("TEST_SHARD_INDEX", "0")
    monkeypatch.setenv("TEST_SHARD_STATUS_FILE", str(shard))
    monkeypatch.setenv("XML_OUTPUT_FILE", str(tmp_path / "out.xml"))
    assert runner.main(["--platform=native", str(prog), "--gtest_filter=A.*"]) == 3
    assert shard.exists()
    # googletest would have written it; the shell script does not.
    assert not (tmp_path / "out.xml").exists()


def test_main_sandbox_writes_xml(tmp_path, monkeypatch) -> None:
    # A fake runsc: drops the global flags and `do`, then runs the command.
    fake = tmp_path / "runsc"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != do ]; do shift; done; shift\n'
        'echo "platform=$RUNSC_TEST_PLATFORM"\n'
        'exec "$@"\n'
    )
    fake.chmod(0o755)
    prog = tmp_path / "prog.sh"
    prog.write_text(
        "#!/bin/sh\n"
        'echo "[ RUN      ] A.B"; echo "[       OK ] A.B (2 ms)"\n'
        'echo "[ RUN      ] A.C"; kill -9 $$\n'
    )
    prog.chmod(0o755)
    xml = tmp_path / "out.xml"
    monkeypatch.setenv("XML_OUTPUT_FILE", str(xml))
    monkeypatch.setenv("TEST_UNDECLARED_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("TEST_TMPDIR", str(tmp_path))
    code = runner.main(
        ["--platform=ptrace", "--no-resume", f"--runsc={fake}", str(prog)]
    )
    assert code == 1
    root = ET.fromstring(xml.read_bytes())
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["B", "C"]
    assert cases[0].find("failure") is None
    assert "signal 9" in cases[1].find("failure").get("message")


FAKE_RUNSC = '#!/bin/sh\nwhile [ "$1" != do ]; do shift; done; shift\nexec "$@"\n'

# A stand-in for a googletest binary: lists four cases, runs those named by
# the last --gtest_filter (or all), and dies or hangs in the case named by
# $FAKE_CRASH / $FAKE_HANG.
FAKE_GTEST = """\
import os, sys, time
ALL = ["A.one", "A.two", "A.three", "B.four"]
args = sys.argv[1:]
if "--gtest_list_tests" in args:
    print("A.\\n  one\\n  two\\n  three\\nB.\\n  four")
    sys.exit(0)
filters = [a.split("=", 1)[1] for a in args if a.startswith("--gtest_filter=")]
names = filters[-1].split(":") if filters else ALL
for n in names:
    print(f"[ RUN      ] {n}", flush=True)
    if n == os.environ.get("FAKE_CRASH"):
        os.kill(os.getpid(), 9)
    if n == os.environ.get("FAKE_HANG"):
        time.sleep(60)
    print(f"[       OK ] {n} (1 ms)", flush=True)
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    runsc = tmp_path / "runsc"
    runsc.write_text(FAKE_RUNSC)
    runsc.chmod(0o755)
    prog = tmp_path / "fake_test"
    prog.write_text(f"#!{sys.executable}\n" + FAKE_GTEST)
    prog.chmod(0o755)
    monkeypatch.setenv("XML_OUTPUT_FILE", str(tmp_path / "out.xml"))
    monkeypatch.setenv("TEST_UNDECLARED_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("TEST_TMPDIR", str(tmp_path))
    for var in ("TEST_TOTAL_SHARDS", "TEST_SHARD_INDEX", "TEST_SHARD_STATUS_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def xml_cases(path) -> list[tuple[str, str]]:
    """Returns (Suite.Name, failure message or "") for each case reported."""
    root = ET.fromstring(path.read_bytes())
    out = []
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        out.append(
            (
                f"{tc.get('classname')}.{tc.get('name')}",
                "" if failure is None else failure.get("message"),
            )
        )
    return out


def test_main_sandbox_all_pass(fake) -> None:
    code = runner.main(
        ["--platform=ptrace", f"--runsc={fake / 'runsc'}", str(fake / "fake_test")]
    )
    assert code == 0
    assert xml_cases(fake / "out.xml") == [
        ("A.one", ""),
        ("A.two", ""),
        ("A.three", ""),
        ("B.four", ""),
    ]


def test_main_sandbox_resumes_after_crash(fake, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_CRASH", "A.two")
    code = runner.main(
        ["--platform=ptrace", f"--runsc={fake / 'runsc'}", str(fake / "fake_test")]
    )
    assert code == 1
    cases = xml_cases(fake / "out.xml")
    assert [n for n, _ in cases] == ["A.one", "A.two", "A.three", "B.four"]
    assert "killed by signal 9" in dict(cases)["A.two"]
    assert dict(cases)["A.three"] == ""


def test_main_sandbox_resumes_after_hang(fake, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HANG", "A.three")
    code = runner.main(
        [
            "--platform=ptrace",
            f"--runsc={fake / 'runsc'}",
            "--stall-timeout=1",
            str(fake / "fake_test"),
        ]
    )
    assert code == 1
    cases = dict(xml_cases(fake / "out.xml"))
    assert "hung" in cases["A.three"]
    assert cases["B.four"] == ""


def test_main_sandbox_no_resume(fake, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_CRASH", "A.two")
    code = runner.main(
        [
            "--platform=ptrace",
            f"--runsc={fake / 'runsc'}",
            "--no-resume",
            str(fake / "fake_test"),
        ]
    )
    assert code == 1
    assert [n for n, _ in xml_cases(fake / "out.xml")] == ["A.one", "A.two"]


def test_main_sandbox_resume_keeps_shard(fake, monkeypatch) -> None:
    # Shard 0 of 2 holds A.one and A.three.
    monkeypatch.setenv("TEST_TOTAL_SHARDS", "2")
    monkeypatch.setenv("TEST_SHARD_INDEX", "0")
    monkeypatch.setenv("FAKE_CRASH", "A.one")
    # The fake ignores sharding in its first run; the resumed run names the
    # shard's cases.
    code = runner.main(
        [
            "--platform=ptrace",
            f"--runsc={fake / 'runsc'}",
            str(fake / "fake_test"),
            "--gtest_filter=A.one",
        ]
    )
    assert code == 1
    assert [n for n, _ in xml_cases(fake / "out.xml")] == ["A.one", "A.three"]
