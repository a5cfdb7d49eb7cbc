"""Every bit-for-bit comparison in the tests states a bit-identity promise (`bitexact`).

ATen picks its CPU kernels (default, AVX2, AVX-512) at run time, and kernels of different
vector widths sum in different orders: two computations that agree on one CPU may differ in
the last bit on another. So a test that compares results bit for bit (`torch.equal`,
`np.array_equal`, `assert_array_equal`) must either compare the same arithmetic, which the
product promises to be deterministic (same seed -> same run on every backend, resume equals
the uninterrupted run), and carry `@pytest.mark.bitexact` -- `make test` runs those tests
again under the CPU's other kernel sets (but for those also marked `processes`, slow to start,
whose arithmetic the in-process ones repeat) -- or compare with a stated tolerance
(`torch.testing.assert_close`). This scan keeps unmarked ones out. `==` between floats cannot
be told from `==` between integers by reading the source: mark such tests by hand.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

TESTS = Path(__file__).parent
EXACT = {"equal", "array_equal", "assert_array_equal", "assert_equal"}
MODULES = {"torch", "np", "numpy", "testing"}  # torch.equal, np.array_equal, np.testing...
BARE = {"array_equal", "assert_array_equal"}  # imported by name from numpy / numpy.testing
TOLERANT = {"assert_close", "allclose", "assert_allclose", "isclose"}  # exact at rtol=atol=0


def _dotted(node: ast.expr) -> list[str]:
    """`np.testing.assert_equal` -> ["np", "testing", "assert_equal"]; [] if not a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else []


def _is_exact_call(node: ast.AST) -> bool:
    """A call of torch.equal, np.array_equal, (np.testing.)assert_(array_)equal, or a
    closeness test with rtol=0 and atol=0."""
    if not isinstance(node, ast.Call):
        return False
    name = _dotted(node.func)
    if name and name[-1] in TOLERANT:
        zero = [k for k in node.keywords if k.arg in ("rtol", "atol")
                and isinstance(k.value, ast.Constant) and k.value.value == 0]
        return len(zero) == 2
    if len(name) == 1:
        return name[0] in BARE
    return len(name) > 1 and name[-1] in EXACT and name[0] in MODULES


def _exact_lines(function: ast.AST) -> list[int]:
    """Lines of the exact comparisons in `function`; `not torch.equal(a, b)` (a claim that two
    results differ, which no rounding makes false) does not count."""
    negated = {id(n.operand) for n in ast.walk(function)
               if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not)}
    return [n.lineno for n in ast.walk(function) if _is_exact_call(n) and id(n) not in negated]


def _names_used(function: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(function)
            if isinstance(n, ast.Name | ast.Attribute)}


def _is_bitexact(decorators: list[ast.expr]) -> bool:
    return any("bitexact" in _dotted(d.func if isinstance(d, ast.Call) else d)
               for d in decorators)


def _module_marked(tree: ast.Module) -> bool:
    """A module-level `pytestmark` that includes `pytest.mark.bitexact`."""
    return any(isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
               and any("bitexact" in _dotted(n) for n in ast.walk(node.value)
                       if isinstance(n, ast.Attribute))
               for node in tree.body)


def _functions(tree: ast.Module) -> list[tuple[ast.FunctionDef, bool]]:
    """Module-level functions and methods of module-level classes, each with whether a
    class decorator marks it bitexact."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found.append((node, False))
        elif isinstance(node, ast.ClassDef):
            found += [(f, _is_bitexact(node.decorator_list)) for f in node.body
                      if isinstance(f, ast.FunctionDef)]
    return found


def unmarked_exact_tests(sources: dict[str, str]) -> list[str]:
    """`file::test` (with the offending line) for each test function that compares bit for
    bit, itself or through a helper function of any of `sources`, without the `bitexact`
    marker. `sources` maps file names to their text."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    helpers = {f.name: f for tree in trees.values() for f, _ in _functions(tree)
               if not f.name.startswith("test")}
    exact = {name for name, f in helpers.items() if _exact_lines(f)}
    while callers := {name for name, f in helpers.items()  # helpers of helpers, and so on
                      if name not in exact and _names_used(f) & exact}:
        exact |= callers
    offenders = []
    for file, tree in trees.items():
        module_marked = _module_marked(tree)
        for test, class_marked in _functions(tree):
            if not test.name.startswith("test") or module_marked or class_marked or \
                    _is_bitexact(test.decorator_list):
                continue
            own = _exact_lines(test)
            via = sorted(_names_used(test) & exact)
            if own:
                offenders.append(f"{file}::{test.name} (line {own[0]})")
            elif via:
                offenders.append(f"{file}::{test.name} (through {via[0]})")
    return offenders


def test_every_bit_for_bit_comparison_is_marked_bitexact():
    sources = {str(path.relative_to(TESTS.parent)): path.read_text(encoding="utf-8")
               for path in sorted(TESTS.rglob("*.py"))}
    offenders = unmarked_exact_tests(sources)
    assert not offenders, (
        "these tests compare results bit for bit but are not marked @pytest.mark.bitexact: "
        + "; ".join(offenders)
        + ". Mark a test bitexact only where the product promises bit-identity (`make test` "
        "then checks it under every ATen CPU kernel set); otherwise compare with "
        "torch.testing.assert_close and a tolerance, saying why."
    )


def test_the_scan_finds_direct_helper_and_class_comparisons_and_respects_markers():
    source = textwrap.dedent("""
        import numpy as np, pytest, torch
        from numpy.testing import assert_array_equal

        def same(a, b):
            return torch.equal(a, b)

        def checks(a, b):
            assert same(a, b)

        def test_direct(a, b):
            assert torch.equal(a, b)

        def test_bare(a, b):
            assert_array_equal(a, b)

        def test_through_helpers(a, b):
            checks(a, b)

        def test_differ(a, b):
            assert not torch.equal(a, b) and not np.array_equal(a, b)

        def test_close(a, b):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=0)

        def test_close_without_tolerance(a, b):
            torch.testing.assert_close(a, b, rtol=0, atol=0)

        @pytest.mark.bitexact
        def test_promised(a, b):
            assert np.testing.assert_array_equal(a, b) is None

        @pytest.mark.parametrize("x", [1])
        @pytest.mark.bitexact
        def test_promised_among_markers(a, b, x):
            checks(a, b)

        @pytest.mark.bitexact
        class TestMarked:
            def test_in_class(self, a, b):
                assert torch.equal(a, b)

        class TestUnmarked:
            def test_in_class(self, a, b):
                assert np.array_equal(a, b)
        """)
    assert unmarked_exact_tests({"t.py": source}) == [
        "t.py::test_direct (line 12)",
        "t.py::test_bare (line 15)",
        "t.py::test_through_helpers (through checks)",
        "t.py::test_close_without_tolerance (line 27)",
        "t.py::test_in_class (line 45)",
    ]
    marked = "import pytest\npytestmark = [pytest.mark.bitexact]\n" + source
    assert unmarked_exact_tests({"t.py": marked}) == []
