"""Tests of `#!` line parsing against fs/binfmt_script.c's rules."""

import pytest

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.task_exec import (
    BINPRM_BUF_SIZE,
    follow_scripts,
    parse_interpreter_line,
)
from pkg.sentry.loader.elf import BytesFile


@pytest.mark.parametrize(
    ("line", "interp", "arg"),
    [
        (b"#!/bin/sh\n", b"/bin/sh", None),
        (b"#!/bin/sh", b"/bin/sh", None),
        (b"#! /bin/sh -e\n", b"/bin/sh", b"-e"),
        (b"#!\t/bin/sh  a  b \t\nrest", b"/bin/sh", b"a  b"),
        (b"#!/bin/sh \n", b"/bin/sh", None),
        # The kernel's buffer is NUL-padded: an empty name, which then fails
        # to open (ENOENT).
        (b"#!", b"", None),
    ],
)
def test_parses(line: bytes, interp: bytes, arg: bytes | None) -> None:
    assert parse_interpreter_line(line) == (interp, arg)


@pytest.mark.parametrize("line", [b"#!\n", b"#!   \t\n"])
def test_no_interpreter_is_enoexec(line: bytes) -> None:
    with pytest.raises(SyscallError) as e:
        parse_interpreter_line(line)
    assert e.value.errno == errno.ENOEXEC


def test_truncated_interpreter_is_enoexec() -> None:
    with pytest.raises(SyscallError) as e:
        parse_interpreter_line(b"#!/" + b"x" * 400)
    assert e.value.errno == errno.ENOEXEC


def test_truncated_argument_is_fine() -> None:
    line = b"#!/bin/sh " + b"a" * 400
    interp, arg = parse_interpreter_line(line)
    assert interp == b"/bin/sh"
    assert arg == b"a" * (BINPRM_BUF_SIZE - 1 - len(b"#!/bin/sh "))


def _opener(files: dict[bytes, bytes]):
    def open_interpreter(path: bytes) -> BytesFile:
        if path not in files:
            raise SyscallError(errno.ENOENT)
        return BytesFile(files[path])

    return open_interpreter


def test_follow_scripts_leaves_an_elf_alone() -> None:
    f = BytesFile(b"\x7fELF")
    assert follow_scripts(f, b"/bin/x", [b"x", b"1"], _opener({})) == (
        f,
        [b"x", b"1"],
    )


def test_follow_scripts_chains_interpreters() -> None:
    opener = _opener({b"/bin/a": b"#!/bin/b -x\n", b"/bin/b": b"\x7fELF"})
    f, argv = follow_scripts(
        BytesFile(b"#!/bin/a\n"), b"./s.sh", [b"s.sh", b"1"], opener
    )
    assert f.data == b"\x7fELF"
    assert argv == [b"/bin/b", b"-x", b"/bin/a", b"./s.sh", b"1"]


def test_follow_scripts_missing_interpreter_is_enoent() -> None:
    with pytest.raises(SyscallError) as e:
        follow_scripts(BytesFile(b"#!/nope\n"), b"s", [b"s"], _opener({}))
    assert e.value.errno == errno.ENOENT


def test_follow_scripts_loop_is_eloop() -> None:
    opener = _opener({b"/loop": b"#!/loop\n"})
    with pytest.raises(SyscallError) as e:
        follow_scripts(BytesFile(b"#!/loop\n"), b"/loop", [b"loop"], opener)
    assert e.value.errno == errno.ELOOP
