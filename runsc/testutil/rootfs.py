"""Root filesystems, bundles and images for end-to-end tests, made without
a registry: Debian's static busybox, its applets as symlinks, and OCI image
archives assembled here."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from typing import Any

BUSYBOX = "/bin/busybox"

# A spec's default environment.
DEFAULT_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"]


def make_busybox_rootfs(root: str, extra_files: dict[str, str] | None = None) -> str:
    """Fills root with busybox, a symlink per applet in /bin, /etc/passwd and
    /etc/group, and a world-writable /tmp. extra_files maps paths inside the
    root to host files to copy in. Returns root."""
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run(
        [BUSYBOX, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = os.path.join(root, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    for inside, host in (extra_files or {}).items():
        dest = os.path.join(root, inside.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(host, dest)
    return root


def make_spec(args: list[str], **process: Any) -> dict[str, Any]:
    """Returns a minimal spec (no terminal) running args in ./rootfs."""
    proc: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": list(DEFAULT_ENV),
        "cwd": "/",
    }
    proc.update(process)
    return {
        "ociVersion": "1.0.2",
        "process": proc,
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "e2e",
        "linux": {
            "namespaces": [
                {"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
            ]
        },
    }


def write_bundle(bundle: str, spec: dict[str, Any]) -> str:
    """Writes spec as bundle/config.json; returns bundle."""
    os.makedirs(bundle, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return bundle


def tar_rootfs(root: str, out: str) -> str:
    """Writes root as a tar file (for podman and docker import)."""
    with tarfile.open(out, "w") as t:
        t.add(root, arcname=".")
    return out


def make_oci_archive(root: str, out: str, name: str) -> str:
    """Writes an OCI image layout archive with root as its one layer
    (uncompressed, streamed through files: a Debian root is large), named
    name (for `ctr images import`)."""
    layer_path = out + ".layer"
    with open(layer_path, "wb") as f:
        subprocess.run(
            ["tar", "--numeric-owner", "-C", root, "-c", "."], stdout=f, check=True
        )
    digest = hashlib.sha256()
    with open(layer_path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    layer_digest = digest.hexdigest()
    blobs: dict[str, bytes] = {}

    def add(data: bytes, media_type: str) -> dict[str, Any]:
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media_type, "digest": f"sha256:{d}", "size": len(data)}

    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": f"sha256:{layer_digest}",
        "size": os.path.getsize(layer_path),
    }
    config = add(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": DEFAULT_ENV, "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            }
        ).encode(),
        "application/vnd.oci.image.config.v1+json",
    )
    manifest = add(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [layer],
            }
        ).encode(),
        "application/vnd.oci.image.manifest.v1+json",
    )
    manifest["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
    }
    index = {"schemaVersion": 2, "manifests": [manifest]}

    def put(t: tarfile.TarFile, path: str, data: bytes) -> None:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))

    try:
        with tarfile.open(out, "w") as t:
            put(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            put(t, "index.json", json.dumps(index).encode())
            for d, data in blobs.items():
                put(t, f"blobs/sha256/{d}", data)
            t.add(layer_path, arcname=f"blobs/sha256/{layer_digest}")
    finally:
        os.unlink(layer_path)
    return out


# Where tools/debian_rootfs.sh keeps its Debian root, and the file it writes
# last.
_DEBIAN_ROOT = "debian-bookworm-minbase"


def debian_rootfs() -> str:
    """Returns the Debian bookworm root tools/debian_rootfs.sh made, or ""
    if it has not been made (tests then skip: making it takes minutes and
    the network, which is set-up's business, not a test's)."""
    cache = os.environ.get("PYVISOR_CACHE", "/var/cache/pyvisor")
    root = os.path.join(cache, _DEBIAN_ROOT)
    if os.path.isfile(os.path.join(root, ".pyvisor-stamp")):
        return root
    return ""
