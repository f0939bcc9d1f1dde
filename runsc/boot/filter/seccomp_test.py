"""Tests for the seccomp filter builder and the sentry's allowlist.

Filters are installed in forked children, which report what they saw
through a pipe; the test process itself is never filtered.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import threading
from collections.abc import Callable

import pytest

from pkg.abi.linux import prctl as PR
from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import sysno as N
from runsc.boot import syscalls
from runsc.boot.filter import config, seccomp
from runsc.boot.filter.seccomp import Arg


def in_child(body: Callable[[], object]) -> object:
    """Runs body in a forked child and returns what it returned (JSON)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = json.dumps({"ok": body()})
        except BaseException as e:
            out = json.dumps({"error": repr(e)})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert "error" not in result, result["error"]
    return result["ok"]


def _errno_of(fn: Callable[[], object]) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno or -1
    return 0


def test_program_is_well_formed() -> None:
    prog = config.program()
    assert len(prog) % 8 == 0
    assert 0 < len(prog) // 8 <= SC.BPF_MAXINSNS
    # It starts by checking the architecture.
    code, _, _, k = struct.unpack_from("<HBBI", prog, 0)
    assert code == SC.BPF_LD | SC.BPF_W | SC.BPF_ABS
    assert k == SC.SECCOMP_DATA_ARCH


def test_many_rules_need_long_jumps() -> None:
    # Hundreds of rules: the search tree's far jumps must still assemble.
    rules = dict.fromkeys(range(0, 450))
    rules[460] = ((Arg(0, 1),),)
    prog = seccomp.build(rules, seccomp.errno_action(errno.EPERM))
    assert len(prog) // 8 > 255


def test_unlisted_calls_fail_and_listed_ones_work() -> None:
    def body() -> dict[str, int]:
        syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
        rules = dict.fromkeys(config.rules())
        rules[N.SYS_seccomp] = None
        del rules[N.SYS_openat]
        prog = seccomp.build(rules, seccomp.errno_action(errno.EACCES))
        seccomp.install(prog, all_threads=False)
        return {
            "getsid": _errno_of(lambda: os.getsid(0)),
            "getpid": _errno_of(os.getpid),
            "open": _errno_of(lambda: os.open("/", os.O_RDONLY)),
        }

    assert in_child(body) == {
        "getsid": errno.EACCES,
        "getpid": 0,
        "open": errno.EACCES,
    }


def test_argument_patterns() -> None:
    def body() -> list[int]:
        syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
        rules = dict.fromkeys(config.rules())
        # fcntl(fd, F_GETFD) only; F_GETFL refused.
        rules[N.SYS_fcntl] = ((Arg(1, 1),),)
        prog = seccomp.build(rules, seccomp.errno_action(errno.EPERM))
        seccomp.install(prog, all_threads=False)
        import fcntl  # noqa: PLC0415

        return [
            _errno_of(lambda: fcntl.fcntl(0, fcntl.F_GETFD)),
            _errno_of(lambda: fcntl.fcntl(0, fcntl.F_GETFL)),
        ]

    assert in_child(body) == [0, errno.EPERM]


def test_masked_argument() -> None:
    def body() -> list[int]:
        syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
        rules = dict.fromkeys(config.rules())
        # getpriority(which, who): which must have bit 1 clear.
        rules[N.SYS_getpriority] = ((Arg(0, 0, mask=2),),)
        prog = seccomp.build(rules, seccomp.errno_action(errno.EPERM))
        seccomp.install(prog, all_threads=False)
        return [
            _errno_of(lambda: os.getpriority(os.PRIO_PROCESS, 0)),  # 0
            _errno_of(lambda: os.getpriority(os.PRIO_USER, 0)),  # 2
        ]

    assert in_child(body) == [0, errno.EPERM]


def test_sentry_filter_allows_threads_and_refuses_processes() -> None:
    def body() -> dict[str, object]:
        syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
        config.install("enforce")
        seen: list[int] = []
        t = threading.Thread(target=lambda: seen.append(os.getpid()))
        t.start()
        t.join()
        return {
            "thread": seen == [os.getpid()],
            "fork": _errno_of(os.fork),
            "open": _errno_of(lambda: os.open("/etc/passwd", os.O_RDONLY)),
            "open-nofollow": _errno_of(
                lambda: os.close(os.open("/", os.O_RDONLY | os.O_NOFOLLOW))
            ),
            "stat": _errno_of(lambda: os.stat("/")),
            "lstat": _errno_of(lambda: os.stat("/", follow_symlinks=False)),
            "fstat": _errno_of(lambda: os.fstat(0)),
            "socket": _errno_of(lambda: __import__("socket").socket()),
        }

    assert in_child(body) == {
        "thread": True,
        "fork": errno.EPERM,
        "open": errno.EPERM,
        # hostfs walks the container's root so (see config.py).
        "open-nofollow": 0,
        "stat": errno.EPERM,
        "lstat": 0,
        "fstat": 0,
        "socket": errno.EPERM,
    }


def test_host_network_program_is_well_formed() -> None:
    prog = config.program(host_network=True)
    assert 0 < len(prog) // 8 <= SC.BPF_MAXINSNS
    assert len(prog) > len(config.program())


def test_host_network_allows_hostinet_calls_only() -> None:
    def body() -> dict[str, int]:
        import socket  # noqa: PLC0415

        syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
        config.install("enforce", host_network=True)
        nb = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | nb, 0)
        udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | nb, 0)
        out = {
            "bind": _errno_of(lambda: tcp.bind(("127.0.0.1", 0))),
            "listen": _errno_of(lambda: tcp.listen(1)),
            "udp6-connect": _errno_of(lambda: udp6.connect(("::1", 9))),
            "getpeername": _errno_of(udp6.getpeername),
            "nodelay": _errno_of(
                lambda: tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ),
            # Not on hostinet's list: loads code into the host kernel.
            "ulp": _errno_of(lambda: tcp.setsockopt(socket.IPPROTO_TCP, 31, b"tls")),
            "blocking": _errno_of(lambda: socket.socket(socket.AF_INET)),
            "unix": _errno_of(lambda: socket.socket(socket.AF_UNIX, nb)),
            "raw": _errno_of(
                lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW | nb, 1)
            ),
        }
        tcp.close()
        udp6.close()
        return out

    assert in_child(body) == {
        "bind": 0,
        "listen": 0,
        "udp6-connect": 0,
        "getpeername": 0,
        "nodelay": 0,
        "ulp": errno.EPERM,
        "blocking": errno.EPERM,
        "unix": errno.EPERM,
        "raw": errno.EPERM,
    }


def test_unknown_mode() -> None:
    with pytest.raises(ValueError):
        config.install("sometimes")
