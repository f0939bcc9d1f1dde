"""SegmentList: a sorted set of non-overlapping address ranges.

Both layers of a MemoryManager (vmas and pmas) are kept in one of these. A
segment is any object with integer `start` and `end` attributes; the list
keeps them sorted by start and never lets two overlap. Lookups are binary
searches over a parallel list of start addresses.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar


class Segment(Protocol):
    """Segment is anything with a half-open [start, end) range."""

    start: int
    end: int


S = TypeVar("S", bound=Segment)


class SegmentList(Generic[S]):
    """SegmentList holds non-overlapping segments sorted by address."""

    __slots__ = ("_segs", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._segs: list[S] = []

    def __len__(self) -> int:
        return len(self._segs)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._segs))

    def find(self, addr: int) -> S | None:
        """Returns the segment containing addr, if any."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            seg = self._segs[i]
            if addr < seg.end:
                return seg
        return None

    def first_at_or_after(self, addr: int) -> S | None:
        """Returns the first segment whose end is above addr."""
        i = self._first_index(addr)
        return self._segs[i] if i < len(self._segs) else None

    def last_before(self, addr: int) -> S | None:
        """Returns the last segment that starts below addr."""
        i = bisect.bisect_left(self._starts, addr) - 1
        return self._segs[i] if i >= 0 else None

    def overlapping(self, start: int, end: int) -> list[S]:
        """Returns the segments that intersect [start, end), in order."""
        out = []
        i = self._first_index(start)
        segs = self._segs
        while i < len(segs) and segs[i].start < end:
            out.append(segs[i])
            i += 1
        return out

    def insert(self, seg: S) -> None:
        """Adds a segment that overlaps no existing one."""
        i = bisect.bisect_left(self._starts, seg.start)
        assert i == len(self._segs) or self._segs[i].start >= seg.end, seg
        assert i == 0 or self._segs[i - 1].end <= seg.start, seg
        self._starts.insert(i, seg.start)
        self._segs.insert(i, seg)

    def remove(self, seg: S) -> None:
        """Removes a segment that is in the list."""
        i = bisect.bisect_left(self._starts, seg.start)
        assert self._segs[i] is seg
        del self._starts[i]
        del self._segs[i]

    def isolate(self, start: int, end: int, split: Callable[[S, int], S]) -> list[S]:
        """Splits segments at start and end and returns those inside.

        Args:
            start: the first address of the range.
            end: one past the last address of the range.
            split: split(seg, addr) shortens seg to end at addr and returns a
                new segment for [addr, old end).

        Returns:
            The segments entirely within [start, end), in order.
        """
        for addr in (start, end):
            seg = self.find(addr)
            if seg is not None and seg.start < addr:
                tail = split(seg, addr)
                assert seg.end == addr and tail.start == addr
                self.insert(tail)
        return self.overlapping(start, end)

    def gaps(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """Yields the unoccupied ranges within [lo, hi), lowest first."""
        cur = lo
        for seg in self.overlapping(lo, hi):
            if seg.start > cur:
                yield cur, seg.start
            cur = max(cur, seg.end)
        if cur < hi:
            yield cur, hi

    def gaps_reversed(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """Yields the unoccupied ranges within [lo, hi), highest first."""
        cur = hi
        for seg in reversed(self.overlapping(lo, hi)):
            if seg.end < cur:
                yield seg.end, cur
            cur = min(cur, seg.start)
        if cur > lo:
            yield lo, cur

    def _first_index(self, addr: int) -> int:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._segs[i].end > addr:
            return i
        return i + 1
