"""Architecture contract (GUIDE.md): ttq_core imports neither ttq_analysis nor reports, and
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
