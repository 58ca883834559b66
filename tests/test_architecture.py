"""The layout's dependency rules, read from the source (every import, top-level or inside a function).

dsp: base (errors, params, streams, denormals) <- io, measure <- process <- decide; demo uses the base only; dsp imports
nothing from server or the REAPER side. server: wire (stdlib + pyzmq) <- service <- daemon <- cli; batch
sits beside daemon. No import cycle anywhere in the project.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dsp", "server")
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Absolute names this module imports: project modules resolved to the deepest known module,
    anything else to its top-level distribution name."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()

    def add(dotted: str) -> None:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            cand = ".".join(parts[:i])
            if cand in known:
                out.add(cand)
                return
        out.add(parts[0])

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for a in node.names:
                full = f"{base}.{a.name}"
                add(full if full in known else base)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n not in graph:
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_anywhere() -> None:
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# (module prefix, project prefixes it may import; its own sub-package is always allowed)
_DSP_RULES = [
    ("dsp.errors", ()),
    ("dsp.params", ("dsp.errors",)),
    ("dsp.streams", ()),
    ("dsp.denormals", ()),
    ("dsp.demo", ("dsp.errors", "dsp.params")),
    ("dsp.io", ("dsp.errors", "dsp.params", "dsp.streams", "dsp.denormals")),
    ("dsp.measure", ("dsp.errors", "dsp.params", "dsp.streams", "dsp.denormals")),
    ("dsp.process", ("dsp.errors", "dsp.params", "dsp.streams", "dsp.denormals", "dsp.measure")),
    ("dsp.decide", ("dsp.errors", "dsp.params", "dsp.streams", "dsp.denormals", "dsp.io", "dsp.measure", "dsp.process",
                    "dsp.data")),
]
_SERVER_RULES = [
    ("server.wire", ()),
    ("server.service", ("dsp", "server.wire")),
    ("server.batch", ("dsp", "server.wire", "server.service")),
    ("server.daemon", ("dsp", "server.wire", "server.service")),
    ("server.cli", ("dsp", "server")),
]


def _owner(module: str, rules: list[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]] | None:
    for prefix, allowed in rules:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, allowed
    return None


def _violations(rules: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    bad = []
    for mod, deps in _graph().items():
        owner = _owner(mod, rules)
        if owner is None or mod == "server.daemon.__main__":  # an entry point may start the CLI's server command
            continue
        prefix, allowed = owner
        for dep in deps:
            if dep.split(".")[0] not in PACKAGES or dep in ("dsp", "server"):
                continue
            if dep == prefix or dep.startswith(prefix + ".") or any(
                    dep == a or dep.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{mod} imports {dep}")
    return sorted(bad)


def test_dsp_layers() -> None:
    assert _violations(_DSP_RULES) == []


def test_dsp_imports_nothing_from_server_or_reaper() -> None:
    bad = [f"{m} imports {d}" for m, deps in _graph().items() if m.startswith("dsp")
           for d in deps if d.split(".")[0] in ("server", "reapy", "reamaster_reaper", "zmq")]
    assert bad == []


def test_server_rooms() -> None:
    assert _violations(_SERVER_RULES) == []


def test_every_dsp_and_server_module_belongs_to_a_room() -> None:
    loose = [m for m in _graph() if m not in ("dsp", "server")
             and _owner(m, _DSP_RULES) is None and _owner(m, _SERVER_RULES) is None]
    assert loose == []


def test_the_wire_is_stdlib_and_pyzmq_only() -> None:
    """What REAPER's embedded Python loads: no dsp, and numpy only where it is optional (the protocol
    uses it when present; tests/test_protocol.py imports the wire with numpy out of reach)."""
    bad = [f"{m} imports {d}" for m, deps in _graph().items() if m.startswith("server.wire")
           for d in deps if d.split(".")[0] not in STDLIB | {"zmq", "server"}
           and (m, d) != ("server.wire.protocol", "numpy")]
    assert bad == []


@pytest.mark.parametrize("rules", [_DSP_RULES, _SERVER_RULES])
def test_the_rule_check_can_fail(rules: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted upward import is reported (so a green check means something)."""
    graph = _graph()
    low = rules[0][0] if rules is _SERVER_RULES else "dsp.measure"
    victim = next(m for m in graph if m.startswith(low + ".") or m == low)
    planted = {**graph, victim: graph[victim] | {"server.cli.main" if rules is _SERVER_RULES else "dsp.decide.master"}}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: planted)
    assert _violations(rules) != []


def _local_imports_without_reason(paths: list[Path]) -> list[str]:
    """Imports inside functions with no reason: neither a comment on the import nor a comment line
    opening the run of import lines it belongs to."""
    found = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                text = lines[node.lineno - 1: node.end_lineno]
                i = node.lineno - 2
                while i >= 0 and lines[i].strip().startswith(("from ", "import ")):
                    i -= 1
                if not any("#" in t for t in text) and not (i >= 0 and lines[i].strip().startswith("#")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[0].strip()}")
    return found


def test_function_local_imports_say_why() -> None:
    """Imports sit at the top of a module; one inside a function (startup time, an optional or
    platform-only module, a cycle) says why in a comment."""
    paths = [p for d in (*PACKAGES, "install", "reaper_scripts") for p in sorted((ROOT / d).rglob("*.py"))]
    assert _local_imports_without_reason(paths) == []


def test_the_local_import_check_can_fail(tmp_path: Path) -> None:
    bad = ROOT / "tests" / f"_planted_{tmp_path.name}.py"
    bad.write_text("def f():\n    import json\n    return json\n\n\ndef g():\n    import json  # why\n    return json\n")
    try:
        assert [s.split(": ", 1)[1] for s in _local_imports_without_reason([bad])] == ["import json"]
    finally:
        bad.unlink()
