"""Smoke test of the benchmark harness: the cheapest workloads, natively,
once, so that the harness cannot rot. It asserts no timings.

The harness runs as a program (as `bazel run` runs it), not imported: the
runfiles tree's `test` directory would shadow the standard library's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")


def _run(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            HARNESS,
            "--reps=1",
            "--duration=0.01",
            f"--json={out}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def test_native_cheap_workloads(tmp_path) -> None:
    proc, doc = _run(
        tmp_path,
        "--runtimes=native",
        "--workloads=getppid,true,files_tmpfs,mmap,seqio,idle_memory",
        "--seq-mib=2",
        f"--tmpfs-dir={tmp_path}",
    )
    results = {(r["key"], r["runtime"]): r for r in doc["results"]}
    for key in (
        "ns_per_call",
        "wall_ms",
        "open_read_close_ns",
        "stat_ns",
        "ns_per_page",
        "write_mib_s",
        "read_mib_s",
        "rss_mib",
        "pss_mib",
    ):
        r = results[(key, "native")]
        assert r["supported"], r
        assert len(r["samples"]) == 1
        assert r["median"] > 0
    assert "syscall getppid" in proc.stdout
    assert doc["idle_processes"]["native"][0]["role"] == "application"


def test_failing_runtime_is_unsupported(tmp_path) -> None:
    _, doc = _run(
        tmp_path,
        "--runtimes=native,broken",
        "--custom=broken=/bin/false",
        "--workloads=getppid,true",
    )
    by_runtime = {(r["key"], r["runtime"]): r for r in doc["results"]}
    assert by_runtime[("ns_per_call", "native")]["supported"]
    broken = by_runtime[("ns_per_call", "broken")]
    assert not broken["supported"]
    assert "exit status 1" in broken["error"]
    assert not by_runtime[("wall_ms", "broken")]["supported"]
    row = next(r for r in doc["table"]["rows"] if r[0] == "syscall getppid")
    assert row[3] == "unsupported"
