"""The house matches the flow: no import circles in `engine` and `live`, `engine` never imports
`live`, every stage of the README's diagram is a module or package of that name, and the type checker
passes on `engine` and `live` entirely."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import machine

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "live")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, at any depth of the file (lazy imports count: a circle
    through a function is still a circle), except under `if TYPE_CHECKING:`."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    # A package's __init__ re-exporting its own modules is not a circle through them.
    return {name: {m for m in imports(path, name, known) if not (path.name == "__init__.py" and m.startswith(name + "."))}
            for name, path in known.items()}


def test_no_import_circles_in_engine_and_live():
    found = cycles(graph())
    assert not found, "import circles: " + "; ".join(" → ".join(c) for c in found)


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_import_reader_sees_every_kind_of_import(tmp_path):
    """imports() is what the circle and layering tests stand on: an empty or partial answer would
    pass them silently. Top-level, relative, lazy (in a function) imports count; TYPE_CHECKING not."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    src = pkg / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nimport p.a\nfrom . import b\nfrom .c import thing\n"
                   "if TYPE_CHECKING:\n    import p.d\ndef f():\n    from p.e import g\n", encoding="utf-8")
    known = {n: pkg / f"{n.split('.')[-1]}.py" for n in ("p", "p.m", "p.a", "p.b", "p.c", "p.d", "p.e")}
    assert imports(src, "p.m", known) == {"p.a", "p.b", "p.c", "p.e"}
    # ...and on this repository: the builder's imports, the lazy renderer imports included.
    real = graph()
    assert {"engine.render.stage", "live.session.show", "engine.render.procedural"} <= real["live.session.factory"]
    assert sum(map(len, real.values())) > 200, "the import graph is nearly empty"


def test_engine_never_imports_live():
    bad = {name: sorted(m for m in deps if m.startswith("live")) for name, deps in graph().items()
           if name.startswith("engine")}
    assert not {k: v for k, v in bad.items() if v}


def diagram() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8").split("```")[1]  # the flow diagram


def test_every_stage_of_the_flow_is_a_module_of_that_name():
    for path in ("live/audio/sources.py", "live/audio/ringbuffer.py", "engine/audio/features.py", "engine/audio/beats.py",
                 "engine/understanding/clap.py", "engine/understanding/heads", "engine/understanding/conditioning.py",
                 "engine/understanding/smoother.py", "engine/render", "live/screen/compositor.py", "live/screen/display.py",
                 "live/export/run.py"):
        assert (ROOT / path).exists(), path
    text = diagram()
    for name in ("live/audio/", "sources.py", "ringbuffer.py", "engine/audio/", "features.py", "beats.py", "clap.py",
                 "heads/", "conditioning.py", "smoother.py", "engine/render/", "live/screen/compositor.py",
                 "live/screen/display.py", "live/export/run.py"):
        assert name in text, f"the README's diagram does not name {name}"


def test_every_folder_and_file_the_diagram_names_exists():
    text = diagram()
    paths = set(re.findall(r"(?<![\w/])((?:engine|live)/[\w/]*(?:\.py)?)", text))
    assert len(paths) > 10, "the diagram names hardly any paths"
    for path in paths:
        assert (ROOT / path).exists(), f"the diagram names {path}, which does not exist"
    dirs = [ROOT / f for f in paths if (ROOT / f).is_dir()]
    for name in set(re.findall(r"(?<![\w/.])(\w+\.py|\w+/)(?![\w/])", text)):
        assert any((d / name).exists() for d in dirs), f"the diagram names {name}, in none of its folders"


def test_the_diagram_names_every_package_of_live():
    """The house drawing's folders are the stages: a package of live/ the diagram omits is a room
    nobody can find."""
    text = diagram()
    for pkg in sorted(p for p in (ROOT / "live").iterdir() if (p / "__init__.py").exists()):
        assert f"live/{pkg.name}/" in text, f"the README's diagram does not name live/{pkg.name}/"


def test_live_has_no_top_level_modules_but_the_cli():
    top = sorted(p.name for p in (ROOT / "live").glob("*.py"))
    assert top == ["__init__.py", "cli.py"], f"group these under a stage package of live/: {top}"


def test_type_checker_passes_on_engine_and_live():
    api = machine.dev_extra("mypy.api")
    # Every package checked with no untyped definitions allowed (pyproject's [tool.mypy]).
    out, err, status = api.run([*(str(ROOT / p) for p in PACKAGES), "--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, out + err
