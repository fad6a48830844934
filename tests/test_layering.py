"""Architecture contract (ARCHITECTURE.md): ttq_core imports neither ttq_analysis nor reports, and
never fvcore, so training runs where only torch is installed."""

import subprocess
import sys


def test_ttq_core_imports_without_fvcore_or_other_layers():
    code = (
        "import sys\n"
        "import ttq_core, ttq_core.models, ttq_core.quantize, ttq_core.data, ttq_core.checkpoint\n"
        "import ttq_core.train.loop, ttq_core.train.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fvcore', 'ttq_analysis', 'reports')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_ttq_analysis_never_imports_reports():
    """ARCHITECTURE.md: the analysis layer hands results up and never reaches into the
    report layer, neither at import time (every module loaded) nor in any function-level
    import written in its source."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "ttq_analysis"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "reports"]
    assert not offenders, offenders
    modules = [p.stem for p in root.glob("*.py") if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module('ttq_analysis.' + m)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'reports']\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_no_import_cycles_inside_ttq_core():
    """Every import between ttq_core's modules points one way (issue 20: datasets ↔
    train.loop and devices ↔ distributed were circles, hidden by function-level imports).
    Every import statement counts, at module level or inside a function; ``from . import
    x`` names the module x; imports of a package's ``__init__`` (re-exports) are left out."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = {".".join(p.relative_to(root).with_suffix("").parts): p
             for p in (root / "ttq_core").rglob("*.py")}

    def targets(module: str, node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            package = module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]

    graph = {m: {t for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for t in targets(m, node) if t in files and t != m}
             for m, p in files.items() if not m.endswith("__init__")}

    def cycle_from(start):
        path, seen = [start], set()

        def walk(m):
            for t in sorted(graph.get(m, ())):
                if t == start:
                    return path + [t]
                if t not in seen:
                    seen.add(t)
                    path.append(t)
                    found = walk(t)
                    if found:
                        return found
                    path.pop()
            return None
        return walk(start)

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
