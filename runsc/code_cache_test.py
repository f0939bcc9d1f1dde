"""Tests of CodeCache: dataclasses made through it are the same as without."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from runsc import code_cache


def _make_classes() -> tuple[type, type]:
    @dataclasses.dataclass(slots=True)
    class Point:
        x: int
        y: int = 2

    @dataclasses.dataclass(frozen=True, slots=True)
    class Frozen:
        name: str
        tags: tuple[str, ...] = ()

    return Point, Frozen


@pytest.fixture
def path(tmp_path) -> Iterator[str]:
    yield str(tmp_path / "cache" / "code.marshal")
    code_cache.uninstall()


def _check(point: type, frozen: type) -> None:
    p = point(1)
    assert (p.x, p.y) == (1, 2)
    assert p == point(1, 2)
    assert repr(p).endswith("Point(x=1, y=2)")
    assert point.__slots__ == ("x", "y")
    f = frozen("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.name = "b"  # type: ignore[misc]
    assert hash(f) == hash(frozen("a"))


def test_classes_behave_as_without_the_cache(path: str) -> None:
    plain = _make_classes()
    code_cache.install(path)
    cached = _make_classes()

    _check(*cached)
    # The generated methods carry the same annotations: the cache compiles
    # without this module's `from __future__ import annotations`.
    for a, b in zip(plain, cached, strict=True):
        assert a.__init__.__annotations__ == b.__init__.__annotations__


def test_second_run_compiles_nothing(path: str) -> None:
    first = code_cache.install(path)
    _make_classes()
    assert len(first) > 0
    first.save()
    assert os.path.exists(path)

    second = code_cache.install(path)
    assert len(second) == len(first)
    _check(*_make_classes())
    assert not second._dirty  # every source was in the file


def test_bad_or_foreign_files_are_ignored(path: str) -> None:
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"something else entirely")
    cache = code_cache.install(path)
    assert len(cache) == 0
    _check(*_make_classes())
    cache.save()  # replaces it

    with open(path, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(data[: len(data) // 2])
        f.truncate()
    assert len(code_cache.CodeCache(path)) == 0


def test_unwritable_location_is_ignored(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = code_cache.install(str(blocker / "sub" / "code.marshal"))
    try:
        _check(*_make_classes())
        cache.save()
    finally:
        code_cache.uninstall()
