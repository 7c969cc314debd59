"""The test suite's own rules (tests/README.md), checked on its source: no test hides a broken project
module or a missing dev dependency behind `importorskip`."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NEVER_SKIPPED = ("engine", "live", "ray", "aalink", "cyndilib", "mypy", "mir_eval", "pytest_timeout")


def importorskips(source: str) -> list[tuple[int, str]]:
    """(line, module) of every `importorskip("...")` call (as `pytest.importorskip` or imported bare)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        arg = node.args[0]
        if name == "importorskip":
            found.append((node.lineno, arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "?"))
    return sorted(found)


def forbidden(module: str) -> bool:
    return module == "?" or module.split(".")[0] in NEVER_SKIPPED


def test_no_test_importorskips_the_project_or_a_dev_dependency():
    bad = [f"{path.name}:{line}: importorskip({module!r})"
           for path in sorted(TESTS.rglob("*.py")) for line, module in importorskips(path.read_text(encoding="utf-8"))
           if forbidden(module)]
    assert not bad, ("a broken import must fail, not skip; dev extras fail with their install hint "
                     "(tests/machine.py's dev_extra): " + "; ".join(bad))


def test_the_guard_sees_importorskip_in_every_spelling():
    q = '"'  # the quote is spliced in so that a grep of tests/ for the pattern finds only real uses
    source = ('import pytest\nfrom pytest import importorskip\nx = pytest.importorskip(' + q + 'live.screen.compositor")\n'
              'def f():\n    return importorskip(' + q + 'engine.audio.features", reason="r")\n'
              'y = pytest.importorskip(NAME)\nz = pytest.importorskip("soxr")\n')
    found = importorskips(source)
    assert found == [(3, "live.screen.compositor"), (5, "engine.audio.features"), (6, "?"), (7, "soxr")]
    assert [forbidden(m) for _, m in found] == [True, True, True, False]
