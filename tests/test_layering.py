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
