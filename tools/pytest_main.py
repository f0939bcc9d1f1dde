"""Runs pytest on the modules named on the command line.

Bazel's py_test targets made by `py_pytest` use this as their main program,
so each test module is an ordinary pytest module.
"""

import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(["-p", "no:cacheprovider", "-q", *sys.argv[1:]]))
