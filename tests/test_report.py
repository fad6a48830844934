"""ttq-report end to end, from real short-trained checkpoints on a CIFAR-10 subset: every
section renders, table numbers equal the JSON, nothing external is referenced, HTML in
names is escaped, exports agree, bad input leaves no half-written report."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from reports.cli import main as report_main
from ttq_core.train import TrainConfig
from ttq_core.train.loop import train

from conftest import CIFAR_ARCHIVE, chromium_console_errors, external_references, needs_cifar

COMMON = dict(data_dir=str(CIFAR_ARCHIVE), limit_train=256, limit_test=100, batch_size=64,
              device="cpu", progress=False)
REPORT_ARGS = ["--data-dir", str(CIFAR_ARCHIVE), "--limit-test", "200", "--no-progress",
               "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    root = tmp_path_factory.mktemp("ckpts")
    train(TrainConfig(mode="fp", epochs=1, lr=0.05, out=str(root / "fp"), **COMMON))
    train(TrainConfig(mode="ttq", init=str(root / "fp" / "best.pt"), epochs=2, lr=0.01,
                      grad_stats_every=1, out=str(root / "ttq"), **COMMON))
    return root / "fp" / "best.pt", root / "ttq" / "last.pt"


@pytest.fixture(scope="module")
def report(checkpoints, tmp_path_factory):
    fp, ttq = checkpoints
    out = tmp_path_factory.mktemp("report") / "r"
    code = report_main([str(ttq), "--baseline", str(fp), "--out", str(out), *REPORT_ARGS])
    assert code == 0
    return out


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags, self.attrs = set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        d = dict(attrs)
        self.attrs.append((tag, d))
        if "id" in d:
            self.ids.add(d["id"])


@needs_cifar
def test_report_has_every_section_and_files(report):
    html = (report / "report.html").read_text()
    p = _Collector()
    p.feed(html)
    assert {"summary", "table3", "net-1", "method"} <= p.ids
    assert p.tags.count("figure") >= 7          # layer figures + history figures
    assert p.tags.count("svg") >= 7             # figures inline
    for name in ("table3_energy", "cost_model"):
        for ext in ("csv", "tex", "md"):
            assert (report / f"{name}.{ext}").stat().st_size > 0
    assert list(report.glob("*.svg")) and list(report.glob("*.png"))
    assert "JPEG copy" in html                   # the data caveat
    for text in ("sparsity", "Wp", "µJ", "horowitz45", "Dense-activation assumption:",
                 "Dense-activation assumption, FP32 baseline:", "How it was trained:"):
        assert text in html
    assert not list(report.parent.glob(".*tmp*"))  # no leftovers of the atomic build


@needs_cifar
def test_report_references_nothing_external(report):
    assert external_references((report / "report.html").read_text()) == []


@needs_cifar
def test_table3_numbers_equal_json(report):
    summary = json.loads((report / "analysis.json").read_text())
    net = summary["networks"][0]
    ttq, fp = net["analysis"]["network"], net["baseline"]["network"]
    html = (report / "report.html").read_text()
    section = html[html.index('id="table3"'):html.index("</section>", html.index('id="table3"'))]
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', section)
              if v not in ("nan", "None", "")]
    for expected in (fp["fp32_dense_total_uJ"], ttq["ttq_dense_total_uJ"],
                     ttq["ttq_measured_total_uJ"], fp["fp32_measured_total_uJ"],
                     fp["fp32_dense_total_uJ"] / ttq["ttq_dense_total_uJ"]):
        assert any(v == pytest.approx(expected, rel=1e-12) for v in values), expected
    with open(report / "table3_energy.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    csv_values = [float(v) for r in rows for v in r.values() if _is_float(v)]
    assert any(v == pytest.approx(ttq["ttq_dense_total_uJ"], rel=1e-12) for v in csv_values)
    tex = (report / "table3_energy.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    shown = f"{ttq['ttq_dense_total_uJ']:.2f}"
    assert shown in tex and shown in (report / "table3_energy.md").read_text()


def _is_float(v):
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


@needs_cifar
def test_html_in_a_name_is_escaped(checkpoints, tmp_path):
    fp, _ = checkpoints
    evil = tmp_path / "<img src=x onerror=alert(1)>.pt"   # no '/' allowed in a file name
    shutil.copyfile(fp, evil)
    out = tmp_path / "r"
    assert report_main([str(evil), "--out", str(out), *REPORT_ARGS, "--limit-test", "50",
                        "--what-if-bn-images", "64"]) == 0
    html = (out / "report.html").read_text()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "what if ternarized" in html       # the FP input's estimate


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "reports.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@needs_cifar
def test_bad_inputs_one_line_error_and_no_report(checkpoints, tmp_path, capsys):
    fp, ttq = checkpoints
    out = tmp_path / "r"
    cases = [
        [str(tmp_path / "missing.pt")],
        [str(ttq), "--energy-model", "nosuch"],
        [str(ttq), "--arch", "resnet32"],
        [str(ttq), "--data-dir", str(tmp_path / "nodata.tar.gz")],
        [str(ttq), "--baseline", str(ttq)],
    ]
    for case in cases:  # in this process (an uncaught exception would fail the test)
        code = report_main([*case, "--out", str(out), "--no-progress", "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 1, (case, err)
        last = [line for line in err.splitlines() if line.strip()][-1]
        assert last.startswith("ttq-report: error:"), err
        assert not out.exists()


@needs_cifar
def test_failed_rerun_keeps_previous_report(report, tmp_path, capsys):
    # in this process (the entry point itself: test_help_teaches); the same main() exits 1
    before = (report / "report.html").read_bytes()
    assert report_main([str(tmp_path / "missing.pt"), "--out", str(report), "--no-progress"]) == 1
    assert "ttq-report: error:" in capsys.readouterr().err
    assert (report / "report.html").read_bytes() == before


def test_help_teaches():
    r = _cli("--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "--baseline" in r.stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
@needs_cifar
def test_report_opens_in_headless_chromium_without_console_errors(report, tmp_path):
    assert chromium_console_errors(report / "report.html", tmp_path) == []


@needs_cifar
def test_hardware_scenario_flags_and_scenario_matrix(checkpoints, tmp_path):
    from tests.test_threshold_plan import RESNET20_ACT_ELEMENTS
    fp, ttq = checkpoints
    out = tmp_path / "r"
    assert report_main([str(ttq), "--baseline", str(fp), "--out", str(out), *REPORT_ARGS,
                        "--limit-test", "64", "--activations", "int8", "--act-memory", "sram",
                        "--energy-model", "horowitz45,jouppi7"]) == 0
    summary = json.loads((out / "analysis.json").read_text())
    net = summary["networks"][0]["analysis"]
    assert net["meta"]["precision"] == "int8" and net["meta"]["act_memory"] == "sram"
    # dense activation traffic of ResNet-20 (counted by hand in test_threshold_plan):
    # 375,882 int8 elements x 8 bits x 5/32 pJ
    act_uJ = RESNET20_ACT_ELEMENTS * 8 * 5 / 32 / 1e6
    assert net["network"]["ttq_dense_act_memory_uJ"] == pytest.approx(act_uJ, rel=1e-12)
    with open(out / "table3_energy.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["precision"] for r in rows] == ["INT8", "TTQ"]
    for r in rows:   # the parts sum to each total
        assert float(r["total_dense_uJ"]) == pytest.approx(
            float(r["compute_dense_uJ"]) + float(r["memory_uJ"]) + float(r["act_memory_dense_uJ"]))
        assert float(r["total_measured_uJ"]) == pytest.approx(
            float(r["compute_measured_uJ"]) + float(r["memory_uJ"]) + float(r["act_memory_measured_uJ"]))
    (matrix_csv,) = out.glob("scenario_matrix_*.csv")
    with open(matrix_csv) as f:
        matrix = list(csv.DictReader(f))
    assert len(matrix) == 2 * 3 * 2 * 3 * 2 and {r["energy_model"] for r in matrix} == {"horowitz45", "jouppi7"}
    # the matrix's row for the report's own scenario is Table 3's saving
    (own,) = [r for r in matrix if (r["energy_model"], r["activations"], r["weight_memory"],
                                    r["act_memory"], r["act_mode"]) == ("horowitz45", "int8", "sram", "sram", "dense")]
    assert float(own["saving"]) == pytest.approx(float(rows[1]["saving_dense"]), rel=1e-9)
    html = (out / "report.html").read_text()
    assert 'id="scenarios"' in html and "Across 72 scenarios (2 cost models)" in html
    assert "The assumption that moves it most is" in html
    assert (out / "cost_model_jouppi7.csv").exists() and list(out.glob("*_scenario_matrix.svg"))
    # the energy-by-layer figure stacks the activation memory too, and says its share
    assert re.search(r"Bars stack arithmetic \(compute\), weight-memory and activation-memory "
                     r"energy in \w+; the network total is [\d.]+ µJ, [\d.]+% of it weight "
                     r"memory and [\d.]+% activation memory", html)


def test_bad_scenario_flags_one_line(tmp_path, capsys):
    code = report_main(["x.pt", "--energy-model", "horowitz45,nosuchmodel", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "unknown energy model 'nosuchmodel'" in err
    with pytest.raises(SystemExit) as exit_info:
        report_main(["x.pt", "--activations", "int4"])
    assert exit_info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
