"""Nothing lost, second round (issue 22): every case done for real, each failing before the fix.

Files the toolkit did not write: a lock path that is a symbolic or hard link is refused
and its target untouched (report and run folders); cleaning up killed builds never
removes another destination's build, shown with a real concurrent build stopped by
SIGSTOP mid-way; a report folder written before the marker existed is refused with the
user's files in it intact; ``--json`` inside ``--out``, on an input or on someone's file,
``ttq-plan --out`` on its input checkpoint or a folder, a symbolic-link ``--out`` and
``--out .``/``..`` are refused before any measuring; two inputs with the same file stem
get distinct labels, files and SVG ids.  Code nobody named: ``--model`` leaves no folder
on ``sys.path`` (a real ``ttq-report`` process with shadowing ``tabulate.py`` and
``jinja2.py`` beside the model module), and a callable's ``sys.exit`` is one line.
One line, never a traceback or a hang: hand-edited checkpoint values (and an accuracy of
5.0) when the file is read, 200,000-deep JSON/TOML, a FIFO as a cost model or a plan,
``--warmup-epochs inf``, ``--device mps``, a sweep run folder whose ``last.pt`` holds a list.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from reports.cli import main as report_main
from reports.output_folder import MARKER, build_atomically, check_destination
from reports.sweep import main as sweep_main
from ttq_analysis.plan_cli import main as plan_main
from ttq_core.errors import OutputError
from ttq_core.train.cli import main as train_main
from ttq_core.train.loop import RUN_LOCK

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar
from test_reliability import ENV, REPORT, TINY, _one_line_error, _snapshot, _write_files

FP_CKPT = REPO / "benchmarks" / "results" / "h200-2026-11-26" / "resnet20_fp_best.pt"
SWEEP = ["--init", str(FP_CKPT), "--data-dir", str(CIFAR_ARCHIVE), "--limit-train", "256",
         "--limit-test", "100", "--batch-size", "64", "--epochs", "1", "--device", "cpu",
         "--no-progress"]


@pytest.fixture(scope="module")
def ttq_ckpt(tmp_path_factory) -> Path:
    """A real one-epoch TTQ checkpoint (256 training images)."""
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    out = tmp_path_factory.mktemp("ttq") / "run"
    assert train_main([*TINY, "--out", str(out), "--epochs", "1"]) == 0
    return out / "best.pt"


class Blocked(Exception):
    """Raised by :func:`deadline`; not an OSError, so no ``except OSError`` swallows it."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (:class:`Blocked`) instead of hanging when the body blocks past ``seconds``."""
    def expire(*_):
        raise Blocked(f"still blocked after {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------- 1: lock files

@pytest.mark.parametrize("link", ["symlink", "hardlink", "foreign-file"])
def test_a_report_lock_path_that_is_not_the_toolkits_lock_is_refused(tmp_path, link):
    victim = tmp_path / "victim.txt"
    victim.write_text("my data\n")
    lock = tmp_path / ".rep.lock"
    if link == "symlink":
        lock.symlink_to(victim)
    elif link == "hardlink":
        os.link(victim, lock)
    else:
        lock.write_text("not a pid, someone's file\n")
    with pytest.raises(OutputError, match="not a lock of this toolkit"):
        build_atomically(tmp_path / "rep", _write_files(["report.html"]))
    assert victim.read_text() == "my data\n"
    assert not (tmp_path / "rep").exists()
    assert lock.is_symlink() if link == "symlink" else lock.exists()


@needs_cifar
def test_a_run_lock_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("my data\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_LOCK).symlink_to(victim)
    assert train_main([*TINY, "--out", str(run), "--epochs", "1"]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-train")
    assert "symbolic link" in line and RUN_LOCK in line
    assert victim.read_text() == "my data\n"
    assert sorted(p.name for p in run.iterdir()) == [RUN_LOCK]


def test_a_stale_lock_left_by_a_killed_holder_is_still_taken_over(tmp_path):
    (tmp_path / ".r.lock").write_text("4242\n")  # what a SIGKILLed holder leaves
    build_atomically(tmp_path / "r", _write_files(["report.html"]))
    assert (tmp_path / "r" / "report.html").exists() and not (tmp_path / ".r.lock").exists()


# ----------------------------------------------------------------------------- 2: leftovers

_STOPPED_BUILD = textwrap.dedent("""
    import os, signal, sys
    from reports.output_folder import build_atomically

    def write(folder):
        for i in range(3):
            (folder / f"a{i}.csv").write_text("a")
        print("half", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # the parent builds the other report now
        for i in range(3):
            (folder / f"b{i}.csv").write_text("b")

    build_atomically(sys.argv[1], write)
""")


def _wait_stopped(pid: int, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() - t0 < timeout, "the build never stopped"
        time.sleep(0.02)


def test_cleanup_never_removes_a_concurrent_build_of_another_folder(tmp_path):
    """``--out x`` while ``--out x.y`` is half built: x.y's temporary folder
    (``.x.y.<random>.tmp``) is not x's leftover, and x.y completes with every file."""
    other = subprocess.Popen([sys.executable, "-c", _STOPPED_BUILD, str(tmp_path / "x.y")],
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "half"
        _wait_stopped(other.pid)
        (building,) = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert building.startswith(".x.y.")
        build_atomically(tmp_path / "x", _write_files(["report.html"]))
        assert (tmp_path / building).is_dir()  # still there
    finally:
        other.send_signal(signal.SIGCONT)
        _, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "x.y").iterdir()) == sorted(
        [MARKER] + [f"{c}{i}.csv" for c in "ab" for i in range(3)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "x.y"]


def test_only_exactly_named_leftovers_of_dead_builds_are_removed(tmp_path):
    dead_tmp, dead_old = tmp_path / ".r.k3j9x2ab.tmp", tmp_path / ".r.old-99999"
    others = [tmp_path / ".r.s.k3j9x2ab.tmp", tmp_path / ".r.old-1.old-2", tmp_path / ".r.x.tmp"]
    for d in (dead_tmp, dead_old, *others):
        d.mkdir()
        (d / MARKER).write_text("{}")
    build_atomically(tmp_path / "r", _write_files(["report.html"]))
    assert not dead_tmp.exists() and not dead_old.exists()
    assert all((d / MARKER).exists() for d in others)


@needs_cifar
def test_a_run_removes_only_exactly_named_temp_files_of_its_own_saves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".best.pt.k3j9x2ab.tmp").write_bytes(b"PK half a save")  # a killed save's
    (run / ".last.pt.notes.tmp").write_text("mine")                 # not the toolkit's
    assert train_main([*TINY, "--out", str(run), "--epochs", "1"]) == 0
    assert not (run / ".best.pt.k3j9x2ab.tmp").exists()
    assert (run / ".last.pt.notes.tmp").read_text() == "mine"


# ----------------------------------------------------------------------------- 3: unmarked report

def test_a_report_folder_without_the_marker_is_refused_with_the_users_files_intact(tmp_path):
    old = tmp_path / "r"
    old.mkdir()
    (old / "report.html").write_text("<html>")
    (old / "analysis.json").write_text(json.dumps({"format": "ttq-report", "networks": []}))
    (old / "notes.md").write_text("what I found")
    (old / "my_measurements.csv").write_text("board,uJ\nA,1.2\n")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputError, match="before report folders were marked"):
        build_atomically(old, _write_files(["report.html"]))
    assert _snapshot(tmp_path) == before


def test_a_fifo_planted_as_marker_or_index_is_refused_without_blocking(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.html").write_text("<html>")
    os.mkfifo(out / MARKER)
    os.mkfifo(out / "analysis.json")
    with deadline(30), pytest.raises(OutputError, match="not a report folder"):
        build_atomically(out, _write_files(["report.html"]))
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "analysis.json", "report.html"])


# ----------------------------------------------------------------------------- 4, 5: --json, stems

def test_json_inside_out_on_an_input_or_on_a_users_file_is_refused_before_measuring(
        ttq_ckpt, tmp_path, capsys):
    out = tmp_path / "r"
    ckpt = tmp_path / "ttq.pt"
    shutil.copy(ttq_ckpt, ckpt)
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    before = _snapshot(tmp_path)
    for json_path, expect in ((out / "extra.json", "inside the report folder"),
                              (ckpt, "is the input"),
                              (tmp_path / "notes.json", "already exists")):
        t0 = time.monotonic()
        assert report_main([str(ckpt), "--out", str(out), "--json", str(json_path), *REPORT]) == 1
        assert expect in _one_line_error(capsys.readouterr().err, "ttq-report")
        assert time.monotonic() - t0 < 20  # refused before measuring
    assert _snapshot(tmp_path) == before


@needs_cifar
def test_two_inputs_with_the_same_stem_keep_their_own_names_files_and_svg_ids(ttq_ckpt, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(ttq_ckpt, tmp_path / sub / "ttq.pt")
    earlier = tmp_path / "analysis-copy.json"  # an earlier --json copy: replaced
    earlier.write_text(json.dumps({"format": "ttq-report", "networks": []}))
    out = tmp_path / "r"
    assert report_main([str(tmp_path / "a" / "ttq.pt"), str(tmp_path / "b" / "ttq.pt"),
                        "--out", str(out), "--json", str(earlier), *REPORT]) == 0
    labels = [n["label"] for n in json.loads((out / "analysis.json").read_text())["networks"]]
    assert labels == ["a/ttq (resnet20, TTQ)", "b/ttq (resnet20, TTQ)"]
    assert json.loads(earlier.read_text())["networks"][1]["label"] == labels[1]
    names = {p.name for p in out.iterdir()}
    for slug in ("a-ttq-resnet20-ttq", "b-ttq-resnet20-ttq"):
        assert {f"layers_{slug}.csv", f"{slug}_energy_by_layer.svg"} <= names
    table3 = (out / "table3_energy.csv").read_text()
    assert "a/ttq" in table3 and "b/ttq" in table3
    ids = re.findall(r'\sid="([^"]+)"', (out / "report.html").read_text())
    assert ids and len(ids) == len(set(ids)), [i for i in set(ids) if ids.count(i) > 1][:5]


# ----------------------------------------------------------------------------- 6: ttq-plan --out

def test_plan_out_on_its_input_a_folder_or_a_users_file_is_refused_before_planning(
        tmp_path, capsys):
    fp = tmp_path / "fp.pt"
    shutil.copy(FP_CKPT, fp)
    (tmp_path / "plans").mkdir()
    (tmp_path / "alias.pt").symlink_to(fp)  # the same file under another name
    (tmp_path / "notes.json").write_text('{"mine": true}')
    before = _snapshot(tmp_path)
    plan = ["--energy-budget", "0.6", "--method", "uniform", "--no-progress"]
    for out, expect in ((fp, "is the input"), (tmp_path / "alias.pt", "is the input"),
                        (tmp_path / "plans", "is a folder"),
                        (tmp_path / "notes.json", "already exists")):
        t0 = time.monotonic()
        assert plan_main([str(fp), *plan, "--out", str(out)]) == 1
        line = _one_line_error(capsys.readouterr().err, "ttq-plan")
        assert expect in line and ".tmp" not in line
        assert time.monotonic() - t0 < 10  # before planning
    assert _snapshot(tmp_path) == before
    # an earlier plan is the command's own output: replaced
    earlier = tmp_path / "plans" / "p.json"
    earlier.write_text(json.dumps({"format": "ttq-threshold-plan", "version": 1}))
    assert plan_main([str(fp), *plan, "--out", str(earlier)]) == 0
    assert json.loads(earlier.read_text())["method"] == "uniform"


# ----------------------------------------------------------------------------- 7, 8: --out

def test_a_symlink_out_is_refused_and_link_and_target_are_kept(tmp_path):
    target = tmp_path / "real"
    build_atomically(target, _write_files(["report.html"]))
    link = tmp_path / "link"
    link.symlink_to(target)
    before = _snapshot(target)
    with pytest.raises(OutputError, match="symbolic link.*give the real folder"):
        build_atomically(link, _write_files(["report.html", "new.csv"]))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


@pytest.mark.parametrize("out", [".", "..", "./"])
def test_out_that_is_or_holds_the_current_folder_is_refused(tmp_path, monkeypatch, out):
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(OutputError, match="current folder"):
        check_destination(Path(out))
    with pytest.raises(OutputError, match="current folder"):
        build_atomically(out, _write_files(["report.html"]))
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


@needs_cifar
def test_report_out_dot_from_an_empty_folder_is_refused_before_measuring(
        ttq_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    t0 = time.monotonic()
    assert report_main([str(ttq_ckpt), "--out", ".", *REPORT]) == 1
    assert "current folder" in _one_line_error(capsys.readouterr().err, "ttq-report")
    assert time.monotonic() - t0 < 20 and list(tmp_path.iterdir()) == []


@needs_cifar
@pytest.mark.parametrize("case", ["symlink", "unmarked-report"])
def test_report_out_link_or_unmarked_report_is_refused_before_measuring(
        ttq_ckpt, tmp_path, capsys, case):
    target = tmp_path / "old"
    target.mkdir()
    (target / "report.html").write_text("<html>")
    (target / "analysis.json").write_text(json.dumps({"format": "ttq-report", "networks": []}))
    (target / "notes.md").write_text("mine")
    out = target
    if case == "symlink":
        (target / MARKER).write_text(json.dumps(  # a proper earlier report behind the link
            {"format": "ttq-report-folder", "files": ["report.html", "analysis.json", "notes.md"]}))
        out = tmp_path / "link"
        out.symlink_to(target)
    before = _snapshot(tmp_path)
    t0 = time.monotonic()
    assert report_main([str(ttq_ckpt), "--out", str(out), *REPORT]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert ("symbolic link" if case == "symlink" else "before report folders were marked") in line
    assert time.monotonic() - t0 < 20 and _snapshot(tmp_path) == before
    assert out.is_symlink() == (case == "symlink")


@needs_cifar
@pytest.mark.parametrize("case", ["symlink", "unmarked-report"])
def test_sweep_report_folder_follows_the_same_rules_before_training(tmp_path, capsys, case):
    out = tmp_path / "s"
    out.mkdir()
    target = tmp_path / "elsewhere" if case == "symlink" else out / "report"
    target.mkdir()
    if case == "symlink":
        (out / "report").symlink_to(target)
    else:
        (target / "report.html").write_text("<html>")
        (target / "sweep.json").write_text(json.dumps({"format": "ttq-sweep"}))
        (target / "notes.md").write_text("mine")
    before = _snapshot(tmp_path)
    assert sweep_main([*SWEEP, "--thresholds", "0.05", "--out", str(out)]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-sweep")
    assert ("symbolic link" if case == "symlink" else "before report folders were marked") in line
    assert _snapshot(tmp_path) == before and not (out / "runs").exists()


# ----------------------------------------------------------------------------- 9, 10: --model

_MODELS = textwrap.dedent("""
    import sys
    from torch import nn

    def make_net():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def leave():
        sys.exit(3)
""")
_SHADOW = ("from pathlib import Path\n"
           "Path(__file__).with_suffix('.RAN').write_text('executed')\n"
           "raise ImportError('a file nobody named was imported')\n")


@needs_cifar
def test_model_folder_is_not_left_on_sys_path_for_later_imports(tmp_path):
    """The real console script: modules imported after --model (tabulate for the Markdown
    tables, jinja2 for the HTML) come from the installation, not from the model's folder."""
    exe = shutil.which("ttq-report")
    if exe is None:
        pytest.skip("the ttq-report console script is not installed")
    (tmp_path / "mymodels.py").write_text(_MODELS)
    for name in ("tabulate", "jinja2", "matplotlib", "fvcore"):
        (tmp_path / f"{name}.py").write_text(_SHADOW)
    sys.path.insert(0, str(tmp_path))
    try:
        import mymodels  # noqa: F401  (the same module, to save its weights)
        torch.save({"model": mymodels.make_net().state_dict()}, tmp_path / "net.pt")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mymodels", None)
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    r = subprocess.run([exe, "net.pt", "--model", "mymodels:make_net", "--out", "rep", *REPORT],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(tmp_path.glob("*.RAN")), [p.name for p in tmp_path.glob("*.RAN")]
    assert (tmp_path / "rep" / "table3_energy.md").exists()


@pytest.mark.parametrize("where", ["call", "import"])
def test_sys_exit_in_model_code_is_one_line(tmp_path, monkeypatch, capsys, where):
    (tmp_path / "exiting.py").write_text(_MODELS + ("\nsys.exit(3)\n" if where == "import" else ""))
    torch.save({"x": torch.zeros(1)}, tmp_path / "net.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "exiting", raising=False)
    spec = "exiting:leave" if where == "call" else "exiting:make_net"
    assert report_main(["net.pt", "--model", spec, "--out", "rep", *REPORT]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert "sys.exit(3)" in line and spec in line
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == \
        ["exiting.py", "net.pt"]


# ----------------------------------------------------------------------------- 11, 16: fields

def _layer(c):
    return c["history"][0]["layers"]["layer1.0.conv1"]


EDITS = {
    "software": (lambda c: c.__setitem__("software", "toolkit 0.2"), "'software'"),
    "bn_recal_images": (lambda c: c["train_config"].__setitem__("bn_recal_images", "2000"),
                        "'bn_recal_images'"),
    "mode": (lambda c: c["train_config"].__setitem__("mode", 1), "'mode'"),
    "history-layer": (lambda c: _layer(c).__setitem__("wp", "0.7"), "'wp'"),
    "min_scale": (lambda c: c["quant"].__setitem__("min_scale", "1e-4"), "'min_scale'"),
    "test_acc-5.0": (lambda c: c["metrics"].__setitem__("test_acc", 5.0), "'test_acc' is 5.0"),
    "history-test_acc": (lambda c: c["history"][0].__setitem__("test_acc", 87.5), "'test_acc'"),
}


@pytest.mark.parametrize("field", list(EDITS))
def test_hand_edited_values_are_one_line_before_measuring(ttq_ckpt, tmp_path, capsys, field):
    edit, expect = EDITS[field]
    ckpt = torch.load(ttq_ckpt, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, tmp_path / "edited.pt")
    t0 = time.monotonic()
    assert report_main([str(tmp_path / "edited.pt"), "--out", str(tmp_path / "r"), *REPORT]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert expect in line and "edited.pt" in line
    assert time.monotonic() - t0 < 20 and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 12, 13: files

def _deep(kind: str, depth: int = 200_000) -> str:
    return "[" * depth + "]" * depth if kind == "json" else "a = " + "[" * depth + "]" * depth


@needs_cifar
@pytest.mark.parametrize("kind", ["json", "toml", "fifo"])
def test_deep_or_fifo_energy_model_is_one_line(ttq_ckpt, tmp_path, capsys, kind):
    path = tmp_path / f"model.{'toml' if kind == 'toml' else 'json'}"
    os.mkfifo(path) if kind == "fifo" else path.write_text(_deep(kind))
    with deadline(60):
        assert report_main([str(ttq_ckpt), "--out", str(tmp_path / "r"), "--energy-model",
                            str(path), *REPORT]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert ("named pipe" if kind == "fifo" else "nested too deeply") in line


@needs_cifar
@pytest.mark.parametrize("kind", ["json", "fifo"])
def test_deep_or_fifo_threshold_plan_is_one_line(tmp_path, capsys, kind):
    plan = tmp_path / "plan.json"
    os.mkfifo(plan) if kind == "fifo" else plan.write_text(_deep("json"))
    with deadline(60):
        assert train_main([*TINY, "--init", str(FP_CKPT), "--threshold-plan", str(plan),
                           "--out", str(tmp_path / "run"), "--epochs", "1"]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-train")
    assert ("named pipe" if kind == "fifo" else "nested too deeply") in line
    assert not (tmp_path / "run").exists()


@needs_cifar
def test_deep_sweep_plan_is_one_line(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "plans").mkdir(parents=True)
    (out / "plans" / "uniform-0-7.json").write_text(_deep("json"))
    assert sweep_main([*SWEEP, "--uniform-budgets", "0.7", "--out", str(out)]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-sweep")
    assert "nested too deeply" in line and "uniform-0-7.json" in line


# ----------------------------------------------------------------------------- 14, 15

@needs_cifar
@pytest.mark.parametrize("flags, expect", [(["--warmup-epochs", "inf"], "--warmup-epochs"),
                                           (["--device", "mps"], "mps")])
def test_train_flags_that_cannot_run_are_one_line(tmp_path, capsys, flags, expect):
    assert train_main([*TINY, "--out", str(tmp_path / "run"), "--epochs", "1", *flags]) == 1
    assert expect in _one_line_error(capsys.readouterr().err, "ttq-train")
    assert not (tmp_path / "run").exists()


@needs_cifar
def test_report_device_mps_is_one_line_before_measuring(ttq_ckpt, tmp_path, capsys):
    argv = [str(ttq_ckpt), "--out", str(tmp_path / "r"), *REPORT, "--device", "mps"]
    assert report_main(argv) == 1  # the last --device wins
    assert "mps" in _one_line_error(capsys.readouterr().err, "ttq-report")
    assert not (tmp_path / "r").exists()


@needs_cifar
def test_sweep_device_mps_is_one_line_before_training(tmp_path, capsys):
    out = tmp_path / "s"
    assert sweep_main([*SWEEP, "--device", "mps", "--thresholds", "0.05", "--out", str(out)]) == 1
    assert "mps" in _one_line_error(capsys.readouterr().err, "ttq-sweep")
    assert not (out / "runs").exists()


@needs_cifar
def test_sweep_run_folder_whose_last_pt_holds_a_list_is_one_line(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "runs" / "t-0-05").mkdir(parents=True)
    torch.save([1, 2, 3], out / "runs" / "t-0-05" / "last.pt")
    before = _snapshot(out)
    assert sweep_main([*SWEEP, "--thresholds", "0.05", "--out", str(out)]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-sweep")
    assert "last.pt is not a checkpoint of this toolkit (it holds a list)" in line
    assert _snapshot(out) == before
