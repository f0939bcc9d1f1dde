"""Attempts to escape from a container must fail.

Two kinds of checks. From inside, a static program (escape.cc) tries what a
hostile application would: host files by path and through symlinks planted
in its root, the 32-bit and x32 system call entries, the host's loopback
network, host processes (signals, ptrace, process_vm_readv). From outside,
the sandbox process is inspected through /proc: its namespaces, its empty
root, its capabilities, no_new_privs and seccomp mode. And runsc itself must
not follow a symlink in the root out of it when it opens the executable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from runsc.testutil import procs
from runsc.testutil.rootfs import make_busybox_rootfs, make_spec, write_bundle
from runsc.testutil.runsc import Runsc, runfile

CANARY = "pyvisor-canary"
PR_SET_CHILD_SUBREAPER = 36
CAP_SYS_PTRACE = 19


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="rsc-esc-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _bundle(tmp: str, args: list[str]) -> str:
    root = os.path.join(tmp, "rootfs")
    os.makedirs(root, exist_ok=True)
    shutil.copy2(runfile("test/e2e/escape"), os.path.join(root, "escape"))
    canary = os.path.join(tmp, "canary")
    with open(canary, "w") as f:
        f.write(CANARY)
    with open(os.path.join(root, "inside"), "w") as f:
        f.write("pyvisor-inside")
    os.symlink(canary, os.path.join(root, "abs-link"))
    os.symlink("../" * 16 + canary.lstrip("/"), os.path.join(root, "rel-link"))
    spec = make_spec(args)
    return write_bundle(os.path.join(tmp, "bundle"), {**spec, "root": {"path": root}})


def test_escape_attempts_fail(tmp: str) -> None:
    got_usr1: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: got_usr1.append(s))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue

    stop = threading.Event()
    t = threading.Thread(target=accept)
    t.start()
    try:
        canary = os.path.join(tmp, "canary")
        bundle = _bundle(tmp, ["/escape", canary, str(port), str(os.getpid())])
        runsc = Runsc(os.path.join(tmp, "root"))
        p = runsc.run("run", "--bundle", bundle, "esc", check=False)
    finally:
        stop.set()
        t.join()
        listener.close()
        signal.signal(signal.SIGUSR1, old)
    lines = p.stdout.splitlines()
    assert "ESCAPED" not in p.stdout, p.stdout
    assert p.returncode == 0, p.stdout + p.stderr
    assert sum(ln.startswith("contained ") for ln in lines) >= 10, p.stdout
    assert "pid=1 ppid=0" in lines
    assert "tried open-inside: read it" in lines
    assert accepted == []
    assert got_usr1 == []


def test_runsc_resolves_the_executable_inside_the_root(tmp: str) -> None:
    # /evil points at a program that exists only on the host.
    host_only = os.path.join(tmp, "host-only")
    shutil.copy2("/bin/true", host_only)
    bundle = _bundle(tmp, ["/evil"])
    os.symlink(host_only, os.path.join(tmp, "rootfs", "evil"))
    os.symlink("../" * 16 + host_only.lstrip("/"), os.path.join(tmp, "rootfs", "rel"))
    runsc = Runsc(os.path.join(tmp, "root"))
    for exe in ("/evil", "/rel", "../../../../bin/true"):
        spec_path = os.path.join(bundle, "config.json")
        with open(spec_path) as f:
            text = f.read()
        with open(spec_path, "w") as f:
            f.write(text.replace('"/evil"', f'"{exe}"', 1))
        p = runsc.run("run", "--bundle", bundle, "c", check=False)
        assert p.returncode == 1, (exe, p.stdout, p.stderr)
        assert "no such file or directory" in p.stderr, p.stderr
        with open(spec_path, "w") as f:
            f.write(text)


def test_sandbox_process_is_confined(tmp: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    root = os.path.join(tmp, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "sleep"))
    bundle = write_bundle(
        os.path.join(tmp, "bundle"),
        {**make_spec(["/bin/sleep", "100"]), "root": {"path": root}},
    )
    runsc = Runsc(os.path.join(tmp, "root"))
    pid_file = os.path.join(tmp, "pid")
    with open(os.path.join(tmp, "out"), "w") as out:
        subprocess.run(
            runsc.argv("create", "--bundle", bundle, "--pid-file", pid_file, "c"),
            stdout=out,
            stderr=out,
            check=True,
            # The sandbox process is a fork of runsc: none of runsc's
            # environment may be left in it.
            env={**os.environ, "PYVISOR_CANARY_ENV": CANARY},
        )
    with open(pid_file) as f:
        pid = int(f.read())
    try:
        runsc.run("start", "c")
        runsc.track(pid)

        # Namespaces: all new but the user and cgroup namespaces.
        for ns in ("pid", "mnt", "net", "ipc", "uts"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(
                f"/proc/self/ns/{ns}"
            ), ns
        # --network=none: no interface but loopback.
        with open(f"/proc/{pid}/net/dev") as f:
            ifaces = [ln.split(":")[0].strip() for ln in f.readlines()[2:]]
        assert ifaces == ["lo"]
        # A new, read-only root holding the copied start-up facts and
        # nothing else: the container's files come from the gofer.
        assert sorted(os.listdir(f"/proc/{pid}/root")) == ["proc"]
        with open(f"/proc/{pid}/mountinfo") as f:
            mounts = [ln.split() for ln in f.read().splitlines()]
        assert [(m[4], m[5].split(",")[0]) for m in mounts] == [
            ("/", "ro"),
        ], mounts
        # Nothing of runsc's environment, and no descriptor of runsc's
        # (its state directory's lock and files) but the exit status file.
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert CANARY.encode() not in f.read()
        state = os.path.realpath(os.path.join(tmp, "root"))
        held = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                held.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        assert [h for h in held if h.startswith(state + "/")] == [
            os.path.join(state, "c", "exit")
        ], held
        # Capabilities: CAP_SYS_PTRACE only, in every thread.
        for tid in os.listdir(f"/proc/{pid}/task"):
            status = f"/proc/{pid}/task/{tid}/status"
            with open(status) as f:
                fields = dict(ln.split(":", 1) for ln in f if ":" in ln)
            for key in ("CapEff", "CapPrm", "CapBnd"):
                assert int(fields[key], 16) == 1 << CAP_SYS_PTRACE, (tid, key)
            assert int(fields["CapInh"], 16) == 0
            assert int(fields["CapAmb"], 16) == 0
            assert fields["NoNewPrivs"].strip() == "1"
            assert fields["Seccomp"].strip() == "2"
            assert int(fields["Seccomp_filters"]) >= 2
    finally:
        runsc.run("delete", "--force", "c", check=False)
        os.waitpid(pid, 0)
    assert runsc.leftovers() == []
    assert procs.pid_namespace(pid) == ""


# Attempts to undo linux.maskedPaths and readonlyPaths from inside, with
# Docker's default capabilities (no CAP_SYS_ADMIN): each must fail.
_UNMASK = r"""
umount /etc/secret 2>/dev/null && echo ESCAPED-umount-file
umount -l /secretdir 2>/dev/null && echo ESCAPED-umount-dir
mount -o remount,rw /data 2>/dev/null && echo ESCAPED-remount
mount -o remount,rw,bind /data 2>/dev/null && echo ESCAPED-remount-bind
umount /data 2>/dev/null && echo ESCAPED-umount-ro
mount -t tmpfs none /data 2>/dev/null && echo ESCAPED-mount-over
mount --bind /other /data 2>/dev/null && echo ESCAPED-bind-over
touch /data/x 2>/dev/null && echo ESCAPED-write-ro
ln /etc/secret /tmp/hard 2>/dev/null && cat /tmp/hard
cat /etc/secret /secretdir/key /proc/self/root/etc/secret 2>/dev/null
ls -A /secretdir /proc/self/root/secretdir 2>/dev/null
chroot / cat /etc/secret 2>/dev/null
echo finished
"""


def test_masked_and_read_only_paths_stay(tmp: str) -> None:
    root = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    for d in ("secretdir", "data", "other"):
        os.makedirs(os.path.join(root, d))
    for path in ("etc/secret", "secretdir/key"):
        with open(os.path.join(root, path), "w") as f:
            f.write(CANARY)
    spec = make_spec(["/bin/sh", "-c", _UNMASK], capabilities=_docker_caps())
    spec["root"] = {"path": root}
    spec["linux"].update(
        maskedPaths=["/etc/secret", "/secretdir"], readonlyPaths=["/data"]
    )
    bundle = write_bundle(os.path.join(tmp, "bundle"), spec)
    p = Runsc(os.path.join(tmp, "root")).run("run", "--bundle", bundle, "c")
    assert "ESCAPED" not in p.stdout, p.stdout
    assert CANARY not in p.stdout, p.stdout
    assert p.stdout.splitlines()[-1] == "finished", p.stdout + p.stderr
    assert os.listdir(os.path.join(root, "data")) == []


def _docker_caps() -> dict[str, list[str]]:
    caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    return {k: caps for k in ("bounding", "effective", "permitted")}
