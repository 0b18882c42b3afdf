"""What the benchmarks' bare loops may import: the check shared by tests/test_bench_*.py."""

from __future__ import annotations

import ast
import inspect

# Third-party modules a bare loop may import inside its functions (the standard library aside).
LOOP_MODULES = {"tensorflow", "tensorflow_text", "numpy", "pyarrow"}


def assert_imports_only(functions, allowed=LOOP_MODULES) -> None:
    """Every import statement inside each function names a module of `allowed` (top-level package)."""
    for function in functions:
        for node in ast.walk(ast.parse(inspect.getsource(function))):
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed, function.__name__
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] in allowed, function.__name__
