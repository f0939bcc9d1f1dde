"""`runsc do` with what a newcomer might hand it: scripts, broken executables
and bad flags.

Each must run as it would natively or fail with a clear message and a
non-zero exit status, and leave no process behind. The test process is a
child subreaper, so a sandbox or gofer that outlives runsc becomes its child
and is seen.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

_WORKSPACE = os.environ.get("TEST_WORKSPACE", "pyvisor")
_PR_SET_CHILD_SUBREAPER = 36


def _runfile(path: str) -> str:
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        root = os.environ.get(var)
        if root:
            candidate = os.path.join(root, _WORKSPACE, path)
            if os.path.exists(candidate):
                return candidate
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "bazel-bin", path)


RUNSC = os.environ.get("E2E_RUNSC") or _runfile("runsc/runsc")


@pytest.fixture(scope="module", autouse=True)
def _subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@pytest.fixture
def tmp() -> Iterator[str]:
    # Under /var/tmp: the sandbox's /tmp is its own tmpfs.
    d = tempfile.mkdtemp(prefix="do-test-", dir="/var/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _leftovers() -> list[str]:
    """Reaps exited orphans and returns the live ones, described."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[1]) != me:
            continue
        if fields[0] == b"Z":
            os.waitpid(int(name), os.WNOHANG)
            continue
        out.append(f"{name} {stat[: stat.rfind(b')') + 1].decode()}")
    return out


def _do(*args: str, cwd: str = "/") -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run(
        [RUNSC, *args], capture_output=True, cwd=cwd, timeout=120, check=False
    )
    # Whatever the sandbox started must have gone with runsc.
    left = []
    for _ in range(100):
        left = _leftovers()
        if not left:
            break
        os.waitpid(-1, 0)
    assert not left, f"runsc {args} left {left}"
    return r


def _write(path: str, data: bytes, mode: int = 0o755) -> str:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def test_script_as_the_command(tmp: str) -> None:
    script = _write(f"{tmp}/s.sh", b"#!/bin/sh -e\necho ran $0 $@\nexit 7\n")
    r = _do("do", script, "a", "b")
    assert r.returncode == 7, r.stderr
    assert r.stdout == f"ran {script} a b\n".encode()


def test_script_chain_as_the_command(tmp: str) -> None:
    inner = _write(f"{tmp}/inner", b"#!/bin/sh\necho inner $@\n")
    outer = _write(f"{tmp}/outer", f"#!{inner}\n".encode())
    r = _do("do", outer, "x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"inner {outer} x\n".encode()


def _elf_header(phoff: int = 64, phnum: int = 1, etype: int = 2) -> bytes:
    return (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + struct.pack(
            "<HHIQQQIHHHHHH",
            etype,
            62,
            1,
            0x401000,
            phoff,
            0,
            0,
            64,
            56,
            phnum,
            0,
            0,
            0,
        )
    )


def _phdr(ptype: int, offset: int, vaddr: int, filesz: int, memsz: int) -> bytes:
    return struct.pack("<IIQQQQQQ", ptype, 5, offset, vaddr, vaddr, filesz, memsz, 4096)


# (name, contents, errno name in the message): files execve refuses.
BAD = [
    ("empty", b"", "ENOEXEC"),
    ("magic_only", b"\x7fELF", "ENOEXEC"),
    ("no_interpreter", b"#!\n", "ENOEXEC"),
    ("missing_interpreter", b"#!/nonexistent/sh\n", "ENOENT"),
    ("phdrs_past_eof", _elf_header(phoff=1 << 40), "ENOEXEC"),
    ("too_many_phdrs", _elf_header(phnum=0xFFFF), "ENOEXEC"),
    (
        "huge_memsz",
        _elf_header() + _phdr(1, 0, 0x400000, 120, 1 << 62),
        "ENOMEM",
    ),
    # PT_INTERP names a text file that cannot be executed.
    (
        "interp_not_executable",
        _elf_header(phnum=2)
        + _phdr(3, 176, 0, 12, 12)
        + _phdr(1, 0, 0x400000, 188, 188)
        + b"/etc/passwd\0",
        "EACCES",
    ),
    # PT_INTERP without its NUL.
    (
        "interp_unterminated",
        _elf_header(phnum=2)
        + _phdr(3, 176, 0, 4, 4)
        + _phdr(1, 0, 0x400000, 180, 180)
        + b"/etc",
        "ENOEXEC",
    ),
]


@pytest.mark.parametrize(("name", "data", "err"), BAD, ids=[b[0] for b in BAD])
def test_bad_executable_fails_clearly(
    tmp: str, name: str, data: bytes, err: str
) -> None:
    r = _do("do", _write(f"{tmp}/{name}", data))
    assert r.returncode != 0
    assert err.encode() in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr, r.stderr


def test_script_loop_is_eloop(tmp: str) -> None:
    loop = f"{tmp}/loop"
    _write(loop, f"#!{loop}\n".encode())
    r = _do("do", loop)
    assert r.returncode != 0
    assert b"ELOOP" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("name", "mode"), [("not_executable", 0o644), ("directory", None)]
)
def test_unrunnable_file_is_refused(tmp: str, name: str, mode: int | None) -> None:
    path = f"{tmp}/{name}"
    if mode is None:
        os.mkdir(path)
    else:
        _write(path, b"#!/bin/sh\n", mode)
    r = _do("do", path)
    assert r.returncode != 0
    assert b"permission denied" in r.stderr, r.stderr


def test_missing_command_is_127() -> None:
    r = _do("do", "/nonexistent/command")
    assert r.returncode == 127
    assert b"not found" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ["--no-such-flag"],
        ["--platform=nonsense"],
        ["--overlay2=bogus"],
        ["--network=bogus"],
        ["--debug=maybe"],
        ["--strace-syscalls=nonsense"],
        ["--log=/nonexistent/dir/log"],
        ["--debug", "--debug-log=/proc/nonexistent/"],
    ],
)
def test_bad_flag_is_refused(flags: list[str]) -> None:
    r = _do(*flags, "do", "/bin/true")
    assert r.returncode != 0
    assert r.stderr.strip(), "no message"
    assert b"Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-"])
def test_closed_standard_fd(closed: str) -> None:
    # A closed descriptor must not be filled by one of runsc's own files and
    # handed to the command; the command sees /dev/null there.
    script = (
        f"exec {RUNSC} do /bin/sh -c "
        "'echo out; echo err >&2; cat; readlink /proc/self/fd/0 >/dev/null'"
        f" {closed}"
    )
    r = subprocess.run(
        ["/bin/sh", "-c", script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert b"Traceback" not in r.stderr, r.stderr
    if closed != ">&-":
        assert r.stdout == b"out\n"
    if closed != "2>&-":
        assert r.stderr == b"err\n"
    assert not _leftovers()
