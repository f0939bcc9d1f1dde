"""Tests for spec checking and reading."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pkg.abi.linux import capability as C
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as S
from runsc.specutils import spec as specutils

BASE = {
    "ociVersion": "1.0.2",
    "process": {
        "args": ["/bin/true"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 1, "gid": 2, "additionalGids": [3]},
        "capabilities": {"effective": ["CAP_KILL", "CAP_CHOWN"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
}


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def _spec(**changes: object) -> dict:
    s = copy.deepcopy(BASE)
    s.update(changes)
    return s


def test_valid_spec_has_no_warnings(bundle: str) -> None:
    assert specutils.check(_spec(), bundle) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("process"),
        lambda s: s["process"].__setitem__("args", []),
        lambda s: s["process"].__setitem__("cwd", "relative"),
        lambda s: s["process"]["user"].__setitem__("uid", -1),
        lambda s: s["process"]["rlimits"].append({"type": "RLIMIT_BOGUS"}),
        lambda s: s["process"]["rlimits"].append(
            {"type": "RLIMIT_CPU", "soft": 5, "hard": 1}
        ),
        lambda s: s.__setitem__("root", {"path": "missing"}),
        lambda s: s.__setitem__("mounts", [{"destination": "relative"}]),
        lambda s: s.__setitem__("hooks", {"prestart": [{"path": "rel"}]}),
        lambda s: s.__setitem__("linux", {"namespaces": [{"type": "bogus"}]}),
        # Past __NEW_UTS_LEN: runc's sethostname fails with EINVAL.
        lambda s: s.__setitem__("hostname", "x" * 65),
        lambda s: s.__setitem__("domainname", "x" * 65),
    ],
)
def test_malformed_specs_are_refused(
    bundle: str, mutate: Callable[[dict], object]
) -> None:
    s = _spec()
    mutate(s)
    with pytest.raises(specutils.SpecError):
        specutils.check(s, bundle)


def test_unsupported_fields_are_warned_about(bundle: str) -> None:
    s = _spec(
        linux={
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["bogus_call"], "action": "SCMP_ACT_KILL"}],
            },
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.hostname": "h"},
        },
        hooks={"startContainer": [{"path": "/bin/true"}]},
    )
    text = "\n".join(specutils.check(s, bundle))
    for word in ("bogus_call", "net.ipv4.ip_forward", "startContainer"):
        assert word in text
    assert "kernel.hostname" not in text


def test_applied_fields_are_not_warned_about(bundle: str) -> None:
    s = _spec(
        mounts=[
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        ],
        linux={
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
            "sysctl": {
                "kernel.domainname": "example",
                "fs.mqueue.msg_max": "20",
                "kernel.shmmax": "65536",
            },
        },
    )
    assert specutils.check(s, bundle) == []


def test_ipc_sysctls() -> None:
    spec = {
        "linux": {
            "sysctl": {
                "kernel.hostname": "h",
                "kernel.msgmnb": "100",
                "fs.mqueue.queues_max": "3",
                "kernel.sem": "1 2 3 4",
            }
        }
    }
    assert specutils.ipc_sysctls(spec) == {
        "fs/mqueue/queues_max": "3",
        "kernel/msgmnb": "100",
    }
    assert specutils.ipc_sysctls({}) == {}


@pytest.mark.parametrize(
    "linux",
    [
        {"sysctl": {"vm.swappiness": "10"}},
        {"sysctl": {"kernel.pid_max": "10"}},
        {"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}},
        {"maskedPaths": ["relative"]},
    ],
)
def test_unsupported_linux_fields_are_refused(bundle: str, linux: dict) -> None:
    with pytest.raises(specutils.SpecError):
        specutils.check(_spec(linux=linux), bundle)


def test_uts_names() -> None:
    assert specutils.uts_names({}) == ("localhost", "")
    assert specutils.uts_names({"hostname": "a", "domainname": "b"}) == ("a", "b")
    spec = {"hostname": "a", "linux": {"sysctl": {"kernel.hostname": "c"}}}
    assert specutils.uts_names(spec) == ("c", "")


def test_load_reports_broken_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(specutils.SpecError, match="not valid JSON"):
        specutils.load(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps([1]))
    with pytest.raises(specutils.SpecError, match="object"):
        specutils.load(str(tmp_path))


def test_process_settings() -> None:
    p = specutils.process_settings(BASE["process"])
    assert (p.uid, p.gid, p.additional_gids) == (1, 2, [3])
    assert p.effective == (1 << 5) | (1 << 0)
    assert p.rlimits == [(L.RLIMIT_NOFILE, 10, 20)]
    assert p.no_new_privileges


def test_process_without_capabilities_keeps_roots() -> None:
    every = (1 << (C.CAP_LAST_CAP + 1)) - 1
    root = specutils.process_settings({"args": ["x"]})
    assert (root.bounding, root.permitted, root.effective) == (every,) * 3
    user = specutils.process_settings({"args": ["x"], "user": {"uid": 5}})
    assert (user.bounding, user.permitted, user.effective) == (every, 0, 0)


@pytest.mark.parametrize(
    ("value", "signo"),
    [
        ("9", S.SIGKILL),
        ("KILL", S.SIGKILL),
        ("SIGTERM", S.SIGTERM),
        ("sigusr1", S.SIGUSR1),
        ("RTMIN+2", S.SIGRTMIN + 2),
        ("SIGRTMAX", S.SIGRTMAX),
    ],
)
def test_parse_signal(value: str, signo: int) -> None:
    assert specutils.parse_signal(value) == signo


@pytest.mark.parametrize("value", ["0", "65", "SIGBOGUS", "RTMAX+1", ""])
def test_parse_signal_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        specutils.parse_signal(value)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x" * 1025])
def test_invalid_ids(cid: str) -> None:
    with pytest.raises(specutils.SpecError):
        specutils.validate_id(cid)


def test_valid_ids() -> None:
    for cid in ("a", "abc-123_x.y+z", "0" * 64):
        specutils.validate_id(cid)


def test_bind_mount_sources_must_exist(bundle: str) -> None:
    (Path(bundle) / "data").mkdir()
    ok = {"destination": "/d", "type": "bind", "source": "data"}
    assert specutils.check(_spec(mounts=[ok]), bundle) == []
    missing = {"destination": "/m", "source": "/no/such/src", "options": ["rbind"]}
    with pytest.raises(specutils.SpecError, match=r"/m: bind source /no/such/src: No"):
        specutils.check(_spec(mounts=[ok, missing]), bundle)


def test_memory_limit() -> None:
    def spec(memory: object) -> dict:
        return {"linux": {"resources": {"memory": memory}}}

    assert specutils.memory_limit({}) == 0
    assert specutils.memory_limit(spec({"limit": 1 << 30})) == 1 << 30
    assert specutils.memory_limit(spec({"limit": -1})) == 0
    assert specutils.memory_limit(spec({"limit": True})) == 0
    assert specutils.memory_limit(spec({})) == 0
