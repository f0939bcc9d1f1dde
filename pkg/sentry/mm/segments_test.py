"""Tests of SegmentList."""

from dataclasses import dataclass

from pkg.sentry.mm.segments import SegmentList


@dataclass
class Seg:
    start: int
    end: int
    tag: str = ""

    def split(self, addr: int) -> "Seg":
        tail = Seg(addr, self.end, self.tag)
        self.end = addr
        return tail


def _list(*ranges: tuple[int, int]) -> SegmentList[Seg]:
    segs: SegmentList[Seg] = SegmentList()
    for s, e in ranges:
        segs.insert(Seg(s, e))
    return segs


def test_find_and_overlapping() -> None:
    segs = _list((10, 20), (30, 40), (40, 50))
    assert segs.find(9) is None
    assert segs.find(10).start == 10
    assert segs.find(19).start == 10
    assert segs.find(20) is None
    assert [s.start for s in segs.overlapping(15, 41)] == [10, 30, 40]
    assert segs.overlapping(20, 30) == []


def test_isolate_splits_at_both_ends() -> None:
    segs = _list((10, 50))
    inside = segs.isolate(20, 30, Seg.split)
    assert [(s.start, s.end) for s in inside] == [(20, 30)]
    assert [(s.start, s.end) for s in segs] == [(10, 20), (20, 30), (30, 50)]


def test_gaps_both_directions() -> None:
    segs = _list((10, 20), (30, 40))
    assert list(segs.gaps(0, 50)) == [(0, 10), (20, 30), (40, 50)]
    assert list(segs.gaps_reversed(0, 50)) == [(40, 50), (20, 30), (0, 10)]
    assert list(segs.gaps(12, 35)) == [(20, 30)]


def test_first_at_or_after_and_last_before() -> None:
    segs = _list((10, 20), (30, 40))
    assert segs.first_at_or_after(5).start == 10
    assert segs.first_at_or_after(15).start == 10
    assert segs.first_at_or_after(25).start == 30
    assert segs.first_at_or_after(40) is None
    assert segs.last_before(30).start == 10
    assert segs.last_before(10) is None
