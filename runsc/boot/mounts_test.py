"""Tests of applying a spec's mounts, masked and read-only paths in the
sentry's VFS (a tmpfs root stands for the container's)."""

from __future__ import annotations

import stat as S

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mount as MS
from pkg.abi.linux.stat import STATX_MODE, STATX_UID
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.devices import memdev
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsOptions, TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.options import MkdirOptions, OpenOptions, SetStatOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem
from runsc.boot import mounts


def test_parse_options():
    o = mounts.parse_options(
        ["rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1k", "tmpcopyup"]
    )
    assert o.flags == MS.MS_RDONLY | MS.MS_NOSUID
    assert o.data == ["mode=755", "size=1k"]
    assert o.tmpcopyup
    assert mounts.parse_options(["ro", "rw", "noexec", "exec"]).flags == 0


def _dests(ms):
    return [m["destination"] for m in ms]


def test_compile_mounts_adds_missing_defaults_in_place():
    spec = [
        {"destination": "/proc", "type": "proc"},
        {"destination": "/dev", "type": "tmpfs"},
        {"destination": "/dev/mqueue", "type": "mqueue"},
        {"destination": "/etc/hosts", "type": "bind", "source": "/x"},
    ]
    out = mounts.compile_mounts(spec, lambda p: p != "/tmp")
    # /sys first (no parent in the spec); /dev/pts and /dev/shm right after
    # the spec's /dev; no /tmp in the root, so none.
    assert _dests(out) == [
        "/sys",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/etc/hosts",
    ]


def test_compile_mounts_keeps_the_specs():
    spec = [{"destination": "/tmp/", "type": "tmpfs", "options": ["size=1k"]}]
    out = mounts.compile_mounts(spec, lambda p: True)
    tmp = [m for m in out if m["destination"] == "/tmp"]
    assert tmp == [{"destination": "/tmp", "type": "tmpfs", "options": ["size=1k"]}]
    assert _dests(out)[:5] == ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"]


class Env:
    def __init__(self) -> None:
        self.vfs = VirtualFilesystem()
        mf = MemoryFile(size=16 << 20)
        self.vfs.register_filesystem_type("tmpfs", TmpfsType(mf))
        memdev.register(self.vfs)
        self.creds = root_credentials()
        self.ns = self.vfs.new_mount_namespace(
            self.creds,
            "tmpfs",
            GetFilesystemOptions(internal=TmpfsOptions(root_mode=0o755)),
        )
        self.root = VirtualDentry(self.ns.root, self.ns.root.root)
        self.populated: list[VirtualDentry] = []
        self.mounter = mounts.SpecMounter(self.vfs, self.ns, self.populated.append)

    def pop(self, path: bytes) -> PathOperation:
        return PathOperation(root=self.root, start=self.root, path=path, follow=True)

    def mkdir(self, path: bytes) -> None:
        self.vfs.mkdir_at(None, self.creds, self.pop(path), MkdirOptions(0o755))

    def write(self, path: bytes, data: bytes, flags: int = F.O_CREAT) -> None:
        fd = self.vfs.open_at(
            None,
            self.creds,
            self.pop(path),
            OpenOptions(F.O_WRONLY | F.O_TRUNC | flags, 0o644),
        )
        try:
            fd.write(None, data)
        finally:
            fd.dec_ref()

    def read(self, path: bytes) -> bytes:
        fd = self.vfs.open_at(None, self.creds, self.pop(path), OpenOptions(F.O_RDONLY))
        try:
            return fd.read(None, 1000)
        finally:
            fd.dec_ref()

    def stat(self, path: bytes):
        return self.vfs.stat_at(None, self.creds, self.pop(path), None)


@pytest.fixture
def env():
    return Env()


def test_apply_mounts_types(env):
    env.mkdir(b"/proc")
    env.mounter.apply(
        mounts.compile_mounts(
            [
                {
                    "destination": "/dev",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "mode=755", "size=65536k"],
                },
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mq"},
                {
                    "destination": "/data/ro",
                    "type": "tmpfs",
                    "options": ["ro", "mode=700"],
                },
            ],
            env.mounter.is_dir,
        ),
        [],
        False,
    )
    # /dev got its devices (the callback) and sub-mounts.
    assert len(env.populated) == 1
    assert env.populated[0].mount.flags & MS.MS_NOSUID
    assert S.S_IMODE(env.stat(b"/dev").mode) == 0o755
    assert S.S_IMODE(env.stat(b"/dev/shm").mode) == 0o1777
    # proc is not registered: an empty read-only directory, with a warning.
    with pytest.raises(SyscallError) as e:
        env.write(b"/proc/x", b"x")
    assert e.value.errno == errno.EROFS
    # mqueue is not registered here: skipped with a warning.
    text = "\n".join(env.mounter.warnings)
    assert "'proc'" in text
    assert "'mqueue'" in text
    assert "'devpts'" in text
    # The read-only tmpfs, its mount point made.
    assert S.S_IMODE(env.stat(b"/data/ro").mode) == 0o700
    with pytest.raises(SyscallError) as e:
        env.write(b"/data/ro/x", b"x")
    assert e.value.errno == errno.EROFS


def test_bad_mount_data_is_an_error(env):
    with pytest.raises(mounts.MountError, match="/x"):
        env.mounter.apply(
            [{"destination": "/x", "type": "tmpfs", "options": ["bogus=1"]}],
            [],
            False,
        )


def test_masked_paths(env):
    env.mkdir(b"/secret")
    env.write(b"/secret/key", b"key")
    env.write(b"/file", b"contents")
    env.mounter.mask(["/secret", "/file", "/missing"])
    assert env.read(b"/file") == b""
    st = env.stat(b"/file")
    assert S.S_ISCHR(st.mode)
    with pytest.raises(SyscallError) as e:
        env.read(b"/secret/key")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(SyscallError) as e:
        env.write(b"/secret/new", b"x")
    assert e.value.errno == errno.EROFS
    # As on Linux, a device node opens for writing on a read-only mount:
    # writes go to the null device.
    env.write(b"/file", b"x")
    assert env.read(b"/file") == b""


def test_readonly_paths(env):
    env.mkdir(b"/conf")
    env.write(b"/conf/a", b"a")
    env.mkdir(b"/conf/sub")
    env.mounter.apply(
        [{"destination": "/conf/sub", "type": "tmpfs", "options": []}], [], False
    )
    env.mounter.make_read_only(["/conf", "/missing"])
    with pytest.raises(SyscallError) as e:
        env.write(b"/conf/a", b"b", 0)
    assert e.value.errno == errno.EROFS
    assert env.read(b"/conf/a") == b"a"
    # What is mounted below stays as it was (runc remounts only the top).
    env.write(b"/conf/sub/w", b"w")
    assert env.read(b"/conf/sub/w") == b"w"


def test_tmpcopyup(env):
    env.mkdir(b"/run")
    env.mkdir(b"/run/lock")
    env.vfs.setstat_at(
        None,
        env.creds,
        env.pop(b"/run/lock"),
        SetStatOptions(mask=STATX_MODE | STATX_UID, mode=0o1777, uid=7),
    )
    env.write(b"/run/lock/f", b"data")
    env.vfs.symlink_at(None, env.creds, env.pop(b"/run/link"), b"lock/f")
    env.mounter.apply(
        [{"destination": "/run", "type": "tmpfs", "options": ["tmpcopyup"]}],
        [],
        False,
    )
    assert env.read(b"/run/link") == b"data"
    # Modes and owners are kept, the covered directory's for the tmpfs's.
    assert S.S_IMODE(env.stat(b"/run").mode) == 0o755
    lock = env.stat(b"/run/lock")
    assert (S.S_IMODE(lock.mode), lock.uid) == (0o1777, 7)
    env.write(b"/run/lock/f", b"changed", 0)
    assert env.read(b"/run/lock/f") == b"changed"
    assert not env.mounter.warnings
    # The copy is in the tmpfs: the covered directory kept its file.
    env.vfs.umount_at(None, env.creds, env.pop(b"/run"), 0, env.ns)
    assert env.read(b"/run/lock/f") == b"data"


def _tmp_mounts(env) -> list:
    out = mounts.compile_mounts([], env.mounter.is_dir)
    return [m for m in out if m["destination"] == "/tmp"]


def test_default_tmp_over_an_empty_directory(env):
    env.mkdir(b"/tmp")
    env.mounter.apply(_tmp_mounts(env), [], False)
    # The sandbox's tmpfs, sticky and writable.
    assert S.S_IMODE(env.stat(b"/tmp").mode) == 0o1777
    env.write(b"/tmp/x", b"x")
    env.vfs.umount_at(None, env.creds, env.pop(b"/tmp"), 0, env.ns)
    with pytest.raises(SyscallError) as e:
        env.read(b"/tmp/x")
    assert e.value.errno == errno.ENOENT


def test_default_tmp_keeps_an_images_files(env):
    # As under runc, which mounts nothing on /tmp: the image's files show.
    env.mkdir(b"/tmp")
    env.write(b"/tmp/from-image", b"image")
    env.mounter.apply(_tmp_mounts(env), [], False)
    assert env.read(b"/tmp/from-image") == b"image"
    with pytest.raises(SyscallError) as e:
        env.vfs.umount_at(None, env.creds, env.pop(b"/tmp"), 0, env.ns)
    assert e.value.errno == errno.EINVAL
