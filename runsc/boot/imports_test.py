"""The sandbox process imports every module before it confines itself.

After pivot_root the sandbox process cannot read runsc's own files, and
after its seccomp filter it cannot open any: an `import` that runs then, in
the sentry or in what the sandbox process runs, fails. So no function in
that code may import (imports for type checking only are fine). This test
reads the source tree, found through the pyproject.toml symlink in the
runfiles, as //:ruff_check_test does.
"""

from __future__ import annotations

import ast
import os
import pathlib

# Code that runs in the sandbox process after it is confined.
CONFINED = ("pkg/sentry", "pkg/platform", "pkg/unet", "pkg/abi", "runsc/boot")


def _workspace() -> pathlib.Path:
    workspace = os.environ.get("TEST_WORKSPACE", "pyvisor")
    link = os.path.join(os.environ.get("TEST_SRCDIR", ""), workspace, "pyproject.toml")
    if os.path.exists(link):
        return pathlib.Path(os.path.realpath(link)).parent
    return pathlib.Path(__file__).resolve().parents[2]


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def test_no_imports_inside_functions() -> None:
    root = _workspace()
    found = []
    for d in CONFINED:
        for path in sorted((root / d).rglob("*.py")):
            if path.name.endswith("_test.py") or "bazel-" in str(path):
                continue
            tree = ast.parse(path.read_text(), str(path))
            allowed = _type_checking_blocks(tree)
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for sub in ast.walk(fn):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        if sub.lineno not in allowed:
                            found.append(f"{path.relative_to(root)}:{sub.lineno}")
    assert found == [], f"imports inside functions of confined code: {found}"
