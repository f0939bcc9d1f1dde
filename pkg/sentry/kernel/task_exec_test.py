"""Tests of `#!` line parsing against fs/binfmt_script.c's rules."""

import pytest

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.task_exec import BINPRM_BUF_SIZE, parse_interpreter_line


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
