"""podman drives runsc: run, exec (with and without a terminal), stop, kill,
rm, with a busybox image and a Debian one, each compared with runc.

podman gets private storage (--root, --runroot, --tmpdir, the overlay
driver), a containers.conf with cgroupfs and lower ulimits (the machine's
root lacks CAP_SYS_RESOURCE), --network none, and a wrapper named runsc that
records each sandbox, so the test can check that no sandbox, gofer or stub
process outlives its container. Images come from local root filesystems
(`podman import`): busybox, and the cached Debian bookworm root of
tools/debian_rootfs.sh (the Debian tests skip without it).

Where runc is installed, each behaviour is checked against it: the same
command under both runtimes gives the same exit status and output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from runsc.testutil import procs
from runsc.testutil.rootfs import debian_rootfs, make_busybox_rootfs, tar_rootfs
from runsc.testutil.runsc import recorded_calls, recorded_namespaces, write_wrapper

BUSYBOX = "localhost/pyvisor-e2e-busybox:latest"
DEBIAN = "localhost/debian-pyvisor:latest"


class Podman:
    """Podman runs podman with private storage and runsc as its runtime."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        conf = os.path.join(tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(
                "[containers]\n"
                'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
            )
        self.env = {**os.environ, "CONTAINERS_CONF": conf}
        os.makedirs(os.path.join(tmp, "bin"))
        self.logs = os.path.join(tmp, "logs") + "/"
        os.makedirs(self.logs)
        self.record = os.path.join(tmp, "sandboxes")
        self.runtime = write_wrapper(
            os.path.join(tmp, "bin", "runsc"),
            self.record,
            [f"--debug-log={self.logs}", "--debug"],
        )
        self.runc = shutil.which("runc")
        self.images: set[str] = set()
        self.base = [
            "podman",
            "--root",
            os.path.join(tmp, "storage"),
            "--runroot",
            os.path.join(tmp, "run"),
            "--tmpdir",
            os.path.join(tmp, "tmp"),
            "--storage-driver",
            "overlay",
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 180, **kw: object
    ) -> subprocess.CompletedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,  # type: ignore[arg-type]
        )
        if check and p.returncode != 0:
            raise AssertionError(f"podman {args} exited {p.returncode}: {p.stderr}")
        return p

    def run_args(self, *args: str, runtime: str = "") -> list[str]:
        """The arguments of `podman run` with runsc (or runtime) and no
        network."""
        return ["run", "--network", "none", "--runtime", runtime or self.runtime, *args]

    def in_terminal(self, *args: str) -> subprocess.CompletedProcess:
        """Runs podman under script(1), which gives it a terminal of 30 rows
        and 100 columns; the exit status is podman's."""
        cmd = " ".join(_quote(a) for a in [*self.base, *args])
        return subprocess.run(
            ["script", "-qec", f"stty rows 30 cols 100; {cmd}", "/dev/null"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def runtimes(self) -> list[str]:
        """runsc, and runc to compare with where it is installed."""
        return [self.runtime] + ([self.runc] if self.runc else [])

    def import_root(self, root: str, image: str) -> subprocess.CompletedProcess:
        """Imports a root directory as an image (tar streamed to podman)."""
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        try:
            p = self("import", "-", image, check=False, stdin=tar.stdout, timeout=600)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if p.returncode == 0:
            self.images.add(image)
        return p


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    if shutil.which("podman") is None or shutil.which("conmon") is None:
        pytest.skip("podman or conmon is not installed (tools/setup.sh installs them)")
    tmp = tempfile.mkdtemp(prefix="rsc-pm-", dir="/tmp")
    pm = Podman(tmp)
    rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
    p = pm(
        "import",
        tar_rootfs(rootfs, os.path.join(tmp, "rootfs.tar")),
        BUSYBOX,
        check=False,
    )
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"podman cannot import an image here: {p.stderr.strip()}")
    pm.images.add(BUSYBOX)
    debian = debian_rootfs()
    if debian:
        p = pm.import_root(debian, DEBIAN)
        assert p.returncode == 0, p.stderr
    yield pm
    pm("rm", "--all", "--force", check=False)
    pm("rmi", "--all", "--force", check=False)
    leftovers = procs.leftovers(recorded_namespaces(pm.record))
    leftovers += procs.leftover_runsc(pm.logs)
    pm("system", "reset", "--force", check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    assert leftovers == [], "sandbox processes outlived their containers"


IMAGES = [
    BUSYBOX,
    pytest.param(DEBIAN, id="debian"),
]


def _image(podman: Podman, image: str) -> str:
    if image not in podman.images:
        pytest.skip(
            "no cached Debian root: tools/debian_rootfs.sh makes it (tools/setup.sh)"
        )
    return image


def _both(podman: Podman, *args: str) -> list[subprocess.CompletedProcess]:
    """Runs `podman run --rm ARGS` with each runtime; checks that they agree
    on the exit status and the output; returns runsc's and runc's."""
    out = [
        podman(*podman.run_args("--rm", *args, runtime=rt), check=False)
        for rt in podman.runtimes()
    ]
    for p in out[1:]:
        assert (out[0].returncode, out[0].stdout) == (p.returncode, p.stdout), (
            out[0].stderr,
            p.stderr,
        )
    return out


def test_run_output_and_exit_status(podman: Podman) -> None:
    p = podman(*podman.run_args("--rm", BUSYBOX, "echo", "hello", "from", "podman"))
    assert p.stdout == "hello from podman\n"
    (p, *_) = _both(podman, BUSYBOX, "sh", "-c", "exit 42")
    assert p.returncode == 42
    # podman passed its log file: runsc was called as a runc would be.
    calls = recorded_calls(podman.record)
    assert any("--log-format=json" in c and " create " in c for c in calls), calls


def test_reads_the_image(podman: Podman) -> None:
    p = podman(*podman.run_args("--rm", BUSYBOX, "cat", "/etc/passwd"))
    assert p.stdout.startswith("root:x:0:0:")


def test_missing_command_is_127(podman: Podman) -> None:
    (p, *_) = _both(podman, BUSYBOX, "no-such-command")
    assert p.returncode == 127, p.stderr
    assert "executable file not found" in p.stderr


def test_shell_in_container(podman: Podman) -> None:
    (p, *_) = _both(
        podman, BUSYBOX, "sh", "-c", "echo a; echo b | cat; (exit 3) || echo $?"
    )
    assert p.stdout == "a\nb\n3\n"


def test_debian_image(podman: Podman) -> None:
    image = _image(podman, DEBIAN)
    script = (
        "cat /etc/debian_version; echo $((6 * 7)) | cat; "
        "ls /usr/bin | wc -l; id; "
        "python3 -c 'import sys; print(sys.version_info[:2])'; "
        "exit 9"
    )
    (p, *_) = _both(podman, image, "bash", "-c", script)
    assert p.returncode == 9
    lines = p.stdout.splitlines()
    assert lines[0].startswith("12."), p.stdout
    assert lines[1] == "42"
    assert lines[3].startswith("uid=0(root) gid=0(root)")
    assert lines[4] == "(3, 11)"


@pytest.mark.parametrize("image", IMAGES)
def test_exec_stop_rm(podman: Podman, image: str) -> None:
    image = _image(podman, image)
    results = {}
    for rt in podman.runtimes():
        cid = podman(*podman.run_args("-d", image, "sleep", "1000", runtime=rt))
        cid = cid.stdout.strip()
        got: list[object] = []
        try:
            sandbox = int(podman("inspect", "--format", "{{.State.Pid}}", cid).stdout)
            conmon = int(
                podman("inspect", "--format", "{{.State.ConmonPid}}", cid).stdout
            )
            assert procs.alive(sandbox)
            got.append(podman("exec", cid, "echo", "exec", "ok").stdout)
            got.append(
                podman("exec", cid, "sh", "-c", "exit 3", check=False).returncode
            )
            p = podman.in_terminal(
                "exec",
                "-t",
                cid,
                "sh",
                "-c",
                "test -t 0 && test -t 1 && echo on-a-tty; stty size; exit 4",
            )
            got += [p.stdout, p.returncode]
            got.append(
                podman("exec", cid, "sh", "-c", "test -t 0 || echo no-tty").stdout
            )
            # sleep does not handle SIGTERM: as pid 1 it ignores it, and
            # podman kills it when the time is up.
            start = time.monotonic()
            podman("stop", "-t", "2", cid)
            got.append(time.monotonic() - start >= 1.5)
            state = podman(
                "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid
            )
            got.append(state.stdout.split())
            assert procs.wait_until(lambda s=sandbox: not procs.alive(s), 10)
            assert procs.wait_until(lambda c=conmon: not procs.alive(c), 10)
        finally:
            podman("rm", "--force", cid, check=False)
        assert podman("ps", "-aq").stdout.strip() == ""
        results[rt] = got
    got = results[podman.runtime]
    assert got == [
        "exec ok\n",
        3,
        "on-a-tty\n30 100\n",
        4,
        "no-tty\n",
        True,
        ["exited", "137"],
    ], got
    for other in results.values():
        assert other == got
    assert procs.leftover_runsc(podman.logs) == []


@pytest.mark.parametrize("image", IMAGES)
def test_stop_a_container_that_handles_sigterm(podman: Podman, image: str) -> None:
    image = _image(podman, image)
    codes = []
    for rt in podman.runtimes():
        script = "trap 'exit 5' TERM; while :; do sleep 0.1; done"
        cid = podman(*podman.run_args("-d", image, "sh", "-c", script, runtime=rt))
        cid = cid.stdout.strip()
        try:
            # Give the shell time to set its trap.
            time.sleep(1)
            podman("stop", "-t", "20", cid)
            codes.append(
                podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip()
            )
        finally:
            podman("rm", "--force", cid, check=False)
    assert codes == ["5"] * len(codes)


@pytest.mark.parametrize("image", IMAGES)
def test_run_with_a_terminal(podman: Podman, image: str) -> None:
    image = _image(podman, image)
    script = (
        "test -t 0 && test -t 1 && echo tty-out; tty; stty size; echo $TERM; exit 3"
    )
    out = []
    for rt in podman.runtimes():
        p = podman.in_terminal(
            *podman.run_args("--rm", "-t", image, "sh", "-c", script, runtime=rt)
        )
        out.append((p.returncode, p.stdout))
    # The container's own terminal, in the sandbox, as under runc.
    assert out[0] == (3, "tty-out\n/dev/pts/0\n30 100\nxterm\n"), out
    assert out == [out[0]] * len(out)


def test_kill_signal(podman: Podman) -> None:
    codes = []
    for rt in podman.runtimes():
        cid = podman(*podman.run_args("-d", BUSYBOX, "sleep", "1000", runtime=rt))
        cid = cid.stdout.strip()
        try:
            podman("kill", "--signal", "KILL", cid)
            podman("wait", cid)
            codes.append(
                podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip()
            )
        finally:
            podman("rm", "--force", cid, check=False)
    assert codes == ["137"] * len(codes)


@pytest.mark.parametrize(
    ("options", "script", "want"),
    [
        (
            ["--read-only"],
            "touch /x 2>/dev/null || echo ro; touch /tmp/x /run/x && ls -A /run",
            "ro\nlock\nmount\nx\n",
        ),
        (
            ["--tmpfs", "/scratch:size=1m,mode=700"],
            "stat -c %a /scratch; touch /scratch/a && echo ok",
            "700\nok\n",
        ),
        (
            ["--cap-drop", "all", "--user", "1000:1000", "--group-add", "44"],
            "id -u; id -G; touch /x 2>/dev/null || echo denied",
            "1000\n1000 44\ndenied\n",
        ),
        (["--hostname", "pm-host"], "hostname", "pm-host\n"),
        (
            ["--security-opt", "seccomp=unconfined", "--privileged=false"],
            "echo fine",
            "fine\n",
        ),
    ],
    ids=["read-only", "tmpfs", "user-caps", "hostname", "seccomp-unconfined"],
)
def test_options_like_runc(
    podman: Podman, options: list[str], script: str, want: str
) -> None:
    image = _image(podman, DEBIAN)
    (p, *_) = _both(podman, *options, image, "sh", "-c", script)
    assert (p.returncode, p.stdout) == (0, want), p.stderr


def test_volume_like_runc(podman: Podman) -> None:
    vol = tempfile.mkdtemp(prefix="rsc-pm-vol-", dir="/var/tmp")
    try:
        with open(os.path.join(vol, "f"), "w") as f:
            f.write("from the host\n")
        script = "cat /data/f; touch /data/g 2>/dev/null || echo ro"
        (p, *_) = _both(podman, "-v", f"{vol}:/data:ro", BUSYBOX, "sh", "-c", script)
        assert p.stdout == "from the host\nro\n", p.stderr
        assert os.listdir(vol) == ["f"]
    finally:
        shutil.rmtree(vol, ignore_errors=True)


def test_oci_hooks_from_podman(podman: Podman) -> None:
    # podman's hooks directory: each stage's hook appends the state it reads
    # on stdin to a file, under runsc and under runc alike.
    hooks = os.path.join(podman.tmp, "hooks")
    os.makedirs(hooks, exist_ok=True)
    out = os.path.join(podman.tmp, "hook-out")
    stages = ["prestart", "createRuntime", "poststart", "poststop"]
    for stage in stages:
        with open(os.path.join(hooks, f"{stage}.json"), "w") as f:
            json.dump(
                {
                    "version": "1.0.0",
                    "hook": {
                        "path": "/bin/sh",
                        "args": ["sh", "-c", f"(echo {stage}; cat; echo) >> {out}"],
                    },
                    "when": {"always": True},
                    "stages": [stage],
                },
                f,
            )
    seen = []
    for rt in podman.runtimes():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out)
        p = podman(
            "--hooks-dir", hooks, *podman.run_args("--rm", BUSYBOX, "true", runtime=rt)
        )
        assert p.returncode == 0
        with open(out) as f:
            lines = f.read().splitlines()
        names = [ln for ln in lines if ln in stages]
        states = [json.loads(ln) for ln in lines if ln.startswith("{")]
        assert len(states) == len(names)
        assert all(s["id"] and s["bundle"] for s in states), states
        seen.append((names, [s["status"] for s in states]))
    assert seen[0][0] == stages, seen
    assert seen == [seen[0]] * len(seen), seen


def test_init_ignores_signals_from_inside(podman: Podman) -> None:
    # pid 1 drops the signals it has no handler for, SIGKILL included, when
    # they come from inside its container.
    got = []
    for rt in podman.runtimes():
        cid = podman(*podman.run_args("-d", BUSYBOX, "sleep", "1000", runtime=rt))
        cid = cid.stdout.strip()
        try:
            p = podman("exec", cid, "sh", "-c", "kill -TERM 1; kill -KILL 1; echo $?")
            time.sleep(0.5)
            state = podman("inspect", "--format", "{{.State.Status}}", cid)
            got.append((p.stdout, state.stdout.strip()))
        finally:
            podman("rm", "--force", "-t", "0", cid, check=False)
    assert got[0] == ("0\n", "running"), got
    assert got == [got[0]] * len(got)


def _host_cgroup(pid: int, controller: str) -> str:
    """Returns the host directory of pid's cgroup for a v1 controller."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _id, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return f"/sys/fs/cgroup/{ctrls}{path}"
    pytest.skip(f"no cgroup v1 {controller} hierarchy here")


def test_resources_and_top_like_runc(podman: Podman) -> None:
    # The sandbox is in the container's cgroup with its limits, which go
    # with the container; `podman top` with ps(1) options runs ps in it.
    # TODO(#7): plain `podman top` reads /proc in the mount namespace of the
    # pid podman got, the sentry's empty root here, and lists nothing (as
    # gVisor's does): runc's shows the container's processes.
    results = {}
    for rt in podman.runtimes():
        cid = podman(
            *podman.run_args(
                "-d",
                "--memory=64m",
                "--cpu-shares=512",
                "--cpus=0.5",
                BUSYBOX,
                "sleep",
                "1000",
                runtime=rt,
            )
        ).stdout.strip()
        try:
            pid = int(podman("inspect", "--format", "{{.State.Pid}}", cid).stdout)
            memory = _host_cgroup(pid, "memory")
            with open(os.path.join(memory, "memory.limit_in_bytes")) as f:
                limit = int(f.read())
            cpu = _host_cgroup(pid, "cpu")
            with open(os.path.join(cpu, "cpu.shares")) as f:
                shares = int(f.read())
            with open(os.path.join(cpu, "cpu.cfs_quota_us")) as f:
                quota = int(f.read())
            top = podman("top", cid, "-eo", "pid,args").stdout.split("\n")[1:]
        finally:
            podman("rm", "--force", "-t", "0", cid, check=False)
        results[rt] = [limit, shares, quota, [ln.split() for ln in top if ln]]
        assert procs.wait_until(lambda m=memory: not os.path.exists(m), 10)
    assert results[podman.runtime] == [
        64 << 20,
        512,
        50000,
        [["1", "sleep", "1000"]],
    ]
    for other in results.values():
        assert other == results[podman.runtime]


def test_pids_limit_like_runc(podman: Podman) -> None:
    # A fork past --pids-limit fails with EAGAIN; busybox sh gives up.
    script = "for i in $(seq 1 30); do sleep 1 & done; echo all-started"
    (p, *_) = _both(podman, "--pids-limit=20", BUSYBOX, "sh", "-c", script)
    assert p.returncode == 2
    assert "can't fork" in p.stderr
