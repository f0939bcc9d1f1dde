"""Tests for install and uninstall's edits of daemon.json and
containers.conf."""

from __future__ import annotations

import json
import tomllib

from runsc.cmd.install import edit_docker, edit_podman


def test_docker_add_and_remove() -> None:
    before = json.dumps({"debug": True, "runtimes": {"other": {"path": "/x"}}})
    after = json.loads(edit_docker(before, "runsc", "/opt/runsc", ["--debug"]))
    assert after["debug"] is True
    assert after["runtimes"]["other"] == {"path": "/x"}
    assert after["runtimes"]["runsc"] == {
        "path": "/opt/runsc",
        "runtimeArgs": ["--debug"],
    }
    removed = json.loads(edit_docker(json.dumps(after), "runsc", None, []))
    assert "runsc" not in removed["runtimes"]
    assert removed["runtimes"]["other"] == {"path": "/x"}


def test_docker_empty_file() -> None:
    cfg = json.loads(edit_docker("", "runsc", "/r", []))
    assert cfg == {"runtimes": {"runsc": {"path": "/r"}}}
    assert json.loads(edit_docker(json.dumps(cfg), "runsc", None, [])) == {}


def test_podman_new_table() -> None:
    text = '[engine]\ncgroup_manager = "cgroupfs"\n'
    out = edit_podman(text, "runsc", "/opt/runsc")
    cfg = tomllib.loads(out)
    assert cfg["engine"]["cgroup_manager"] == "cgroupfs"
    assert cfg["engine"]["runtimes"]["runsc"] == ["/opt/runsc"]


def test_podman_replace_and_remove() -> None:
    text = (
        "[engine.runtimes]\n"
        'crun = ["/usr/bin/crun"]\n'
        "runsc = [\n"
        '  "/old/runsc",\n'
        "]\n"
        "\n"
        "[network]\n"
        'network_backend = "netavark"\n'
    )
    out = edit_podman(text, "runsc", "/new/runsc")
    cfg = tomllib.loads(out)
    assert cfg["engine"]["runtimes"] == {
        "crun": ["/usr/bin/crun"],
        "runsc": ["/new/runsc"],
    }
    assert cfg["network"]["network_backend"] == "netavark"
    gone = tomllib.loads(edit_podman(out, "runsc", None))
    assert gone["engine"]["runtimes"] == {"crun": ["/usr/bin/crun"]}
    assert gone["network"]["network_backend"] == "netavark"
