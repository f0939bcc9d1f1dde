"""Checks of the syscall table itself."""

from pkg.abi.linux import sysno as N
from pkg.sentry.syscalls.linux.linux64 import build_table, entries
from pkg.sentry.syscalls.syscall import SUPPORT_FULL


def test_entries_are_unique_and_named_as_linux_names_them() -> None:
    table = build_table()
    seen = set()
    for e in entries():
        assert e.number not in seen, e.name
        seen.add(e.number)
        assert N.NAMES[e.number] == e.name
        assert table[e.number] is e


def test_partial_and_error_entries_explain_themselves() -> None:
    for e in entries():
        if e.support != SUPPORT_FULL:
            assert e.note, f"{e.name} needs a note"


def test_handlers_document_their_man_page() -> None:
    for e in entries():
        if e.support == SUPPORT_FULL:
            assert e.fn.__doc__, f"{e.name} handler lacks a docstring"
