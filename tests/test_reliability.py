"""Nothing lost, ever: every failure of issue 14 done for real.

Report folders (``reports.output_folder``): a run folder, ``.``, a foreign folder or an
earlier report with someone's files in it is refused and left byte-identical; an earlier
report is replaced atomically; leftovers of killed builds are removed; permissions follow
the umask; two writers are serialised by a lock that a SIGKILLed holder does not keep.
Training: SIGKILL at random points and between the best.pt/last.pt writes, then
``--resume``, gives the bitwise result of an uninterrupted run; two trainers on one
``--out`` (fresh or ``--resume``) get one line naming the PID; ``--resume`` keeps the
stored configuration; disk full and a read-only folder are one line.  Checkpoints with
NaN weights, a zero std or hand-edited fields of the wrong type are refused with one line.
Subprocesses run with ``OMP_NUM_THREADS=1`` on 256 training images, so each takes seconds.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reports.cli import main as report_main
from reports.output_folder import MARKER, build_atomically
from ttq_core.errors import OutputError
from ttq_core.train.cli import main as train_main
from ttq_core.train.loop import RUN_LOCK

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar

pytestmark = needs_cifar

TINY = ["--data-dir", str(CIFAR_ARCHIVE), "--limit-train", "256", "--limit-test", "100",
        "--batch-size", "64", "--device", "cpu", "--no-progress", "--mode", "ttq",
        "--grad-stats-every", "1", "--bn-recal-images", "128"]
REPORT = ["--data-dir", str(CIFAR_ARCHIVE), "--limit-test", "100", "--no-progress",
          "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "ttq_core.train", *TINY, "--out", str(out), *extra]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(stderr: str, prog: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_same_run(a: dict, b: dict) -> None:
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A real two-epoch TTQ run (last.pt, best.pt, log.jsonl) and its uninterrupted result."""
    out = tmp_path_factory.mktemp("straight") / "run"
    r = subprocess.run(_train_cmd(out, "--epochs", "3"), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


# ----------------------------------------------------------------------------- report folders

def test_report_into_a_run_folder_is_refused_and_the_run_survives(run_folder, capsys):
    before = _snapshot(run_folder)
    code = report_main([str(run_folder / "best.pt"), "--out", str(run_folder), *REPORT])
    assert code == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert "not a report folder" in line and "last.pt" in line
    assert _snapshot(run_folder) == before
    assert sorted(p.name for p in run_folder.parent.iterdir()) == ["run"]  # no leftovers


def test_report_into_the_current_folder_is_refused(run_folder, tmp_path, monkeypatch, capsys):
    (tmp_path / "paper.tex").write_text("my paper")
    monkeypatch.chdir(tmp_path)
    assert report_main([str(run_folder / "best.pt"), "--out", ".", *REPORT]) == 1
    _one_line_error(capsys.readouterr().err, "ttq-report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper.tex"]
    assert (tmp_path / "paper.tex").read_text() == "my paper"


def _write_files(names):
    def write(folder: Path):
        for n in names:
            (folder / n).write_text(n)
    return write


def test_earlier_report_is_replaced_but_foreign_files_are_refused(tmp_path):
    out = tmp_path / "r"
    build_atomically(out, _write_files(["report.html", "a.csv"]))
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "report.html", "a.csv"])
    build_atomically(out, _write_files(["report.html", "b.csv"]))  # an earlier report: replaced
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "report.html", "b.csv"])
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write.*notes.txt"):
        build_atomically(out, _write_files(["report.html"]))
    assert (out / "notes.txt").read_text() == "mine" and (out / "b.csv").read_text() == "b.csv"
    empty = tmp_path / "empty"
    empty.mkdir()
    build_atomically(empty, _write_files(["report.html"]))
    assert (empty / "report.html").exists()


def test_a_report_written_before_the_marker_is_refused(tmp_path):
    """Without the marker nothing says which files the report wrote (issue 22: the user's
    notes.md beside it were lost), so such a folder is refused, with a line saying why."""
    old = tmp_path / "r"
    old.mkdir()
    (old / "report.html").write_text("<html>")
    (old / "analysis.json").write_text(json.dumps({"format": "ttq-report", "networks": []}))
    (old / "table3_energy.csv").write_text("a,b")
    before = _snapshot(old)
    with pytest.raises(OutputError, match="written before report folders were marked"):
        build_atomically(old, _write_files(["report.html"]))
    assert _snapshot(old) == before


@pytest.mark.parametrize("case", ["out-is-a-file", "out-under-a-file"])
def test_train_out_that_is_a_file_is_one_line(tmp_path, capsys, case):
    (tmp_path / "f").write_text("data")
    out = tmp_path / "f" if case == "out-is-a-file" else tmp_path / "f" / "run"
    assert train_main([*TINY, "--out", str(out), "--epochs", "1"]) == 1
    _one_line_error(capsys.readouterr().err, "ttq-train")
    assert (tmp_path / "f").read_text() == "data"


@pytest.mark.parametrize("case", ["file", "under-a-file", "no-marker"])
def test_report_destinations_that_are_not_folders_or_not_reports(tmp_path, case):
    target = tmp_path / "x"
    if case == "file":
        target.write_text("data")
    elif case == "under-a-file":
        (tmp_path / "f").write_text("data")
        target = tmp_path / "f" / "x"
    else:
        target.mkdir()
        (target / "report.html").write_text("someone else's")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputError):
        build_atomically(target, _write_files(["report.html"]))
    assert _snapshot(tmp_path) == before


def test_leftovers_of_killed_builds_are_removed_and_umask_is_respected(tmp_path):
    stale_tmp, stale_old, foreign = (tmp_path / ".r.k3j9x2ab.tmp", tmp_path / ".r.old-99999",
                                     tmp_path / ".r.mine1234.tmp")
    for d in (stale_tmp, stale_old, foreign):
        d.mkdir()
    (stale_tmp / MARKER).write_text("{}")
    (stale_old / MARKER).write_text("{}")
    (foreign / "keep.txt").write_text("not the toolkit's")
    old = os.umask(0o027)
    try:
        build_atomically(tmp_path / "r", _write_files(["report.html"]))
    finally:
        os.umask(old)
    assert not stale_tmp.exists() and not stale_old.exists()
    assert (foreign / "keep.txt").exists()
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.mine1234.tmp", "r"]


_HOLD_LOCK = ("import sys, time; from ttq_core.folder_lock import exclusive_lock\n"
              "with exclusive_lock(sys.argv[1], 'x'):\n"
              "    print('locked', flush=True); time.sleep(60)")


def test_second_report_writer_is_refused_and_a_killed_holder_frees_the_lock(tmp_path):
    out = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(tmp_path / ".r.lock")],
                              env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=f"in use by another process \\(PID {holder.pid}\\)"):
            build_atomically(out, _write_files(["report.html"]))
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    build_atomically(out, _write_files(["report.html"]))  # the stale lock file is taken over
    assert (out / "report.html").exists() and not (tmp_path / ".r.lock").exists()


# ----------------------------------------------------------------------------- training

def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


def test_two_trainers_on_one_run_folder(tmp_path):
    out = tmp_path / "run"
    # the first run trains long enough (1,024 images, 5-10 s) to still hold the lock
    # while the two others start (their imports alone take seconds); they ask at once
    first = subprocess.Popen(_train_cmd(out, "--epochs", "1", "--limit-train", "1024"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / RUN_LOCK, first)
    others = [subprocess.Popen(_train_cmd(out, "--epochs", "1", *extra), env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for extra in ([], ["--resume"])]
    for second in others:
        _, err = second.communicate()
        assert second.returncode == 1, err
        line = _one_line_error(err, "ttq-train")
        assert f"in use by another process (PID {first.pid})" in line
    _, err = first.communicate()
    assert first.returncode == 0, err
    epochs = [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == [1]
    assert not (out / RUN_LOCK).exists()


def _epochs_done(out: Path) -> int:
    """Epochs recorded in ``out/last.pt`` (0 if there is none yet)."""
    if not (out / "last.pt").exists():
        return 0
    return len(torch.load(out / "last.pt", weights_only=True).get("history") or [])


def test_sigkill_at_random_points_then_resume_is_bitwise_identical(run_folder, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(14)
    kills = 0
    for attempt in range(4):  # kill, resume, kill, ... then let it finish
        if _epochs_done(out) == 3:
            break  # a kill landed after the last epoch was saved (while the process exited)
        resume = ["--resume"] if (out / "last.pt").exists() else []
        proc = subprocess.Popen(_train_cmd(out, "--epochs", "3", *resume), env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:  # startup (imports, data) takes a few seconds, each epoch about one
            proc.wait(timeout=rng.uniform(3.0, 9.0) if attempt < 3 else None)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 1
    _assert_same_run(_state(run_folder / "last.pt"), _state(out / "last.pt"))
    assert not list(out.glob(".*.tmp")) and not (out / RUN_LOCK).exists()


def test_kill_in_the_final_epoch_between_best_and_last_then_resume(run_folder, tmp_path):
    out = tmp_path / "run"
    env = {**ENV, "TTQ_TEST_KILL_AFTER_BEST": "3"}  # the final epoch
    r = subprocess.run(_train_cmd(out, "--epochs", "3"), env=env, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL
    best, last = _state(out / "best.pt"), _state(out / "last.pt")
    assert last["metrics"]["epochs_completed"] == 2
    assert best["metrics"]["best_epoch"] in (1, 2, 3)  # 3: best.pt is ahead of last.pt
    (out / ".last.pt.x1y2z3w4.tmp").write_bytes(b"PK half a save")  # as a kill mid-save leaves
    r = subprocess.run(_train_cmd(out, "--epochs", "3", "--resume"), env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    final, straight = _state(out / "last.pt"), _state(run_folder / "last.pt")
    _assert_same_run(straight, final)
    best = _state(out / "best.pt")
    assert best["metrics"]["best_epoch"] == final["metrics"]["best_epoch"]
    assert best["metrics"]["epochs_completed"] == final["metrics"]["best_epoch"]
    assert not list(out.glob(".*.tmp"))


def test_resume_continues_the_stored_configuration(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train_main([*TINY, "--out", str(out), "--epochs", "1", "--lr", "0.02"]) == 0
    monkeypatch.setenv("TTQ_DATA_DIR", str(tmp_path / "nowhere"))  # the stored --data-dir wins
    before = _snapshot(out)
    assert train_main(["--out", str(out), "--resume", "--lr", "0.5"]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-train")
    assert "--lr 0.5 (the run has 0.02)" in line
    assert _snapshot(out) == before
    # no flags: the stored epochs (1) are finished, not replaced by the default 40
    assert train_main(["--out", str(out), "--resume"]) == 1
    assert "already finished 1 epochs" in capsys.readouterr().err
    # more epochs are allowed and recorded; the data source is the stored one
    assert train_main(["--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0
    ckpt = _state(out / "last.pt")
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
    assert ckpt["history"][1]["resumed_with"] == {"epochs": {"from": 1, "to": 2}}
    assert ckpt["train_config"]["data_dir"] == str(CIFAR_ARCHIVE)
    assert ckpt["train_config"]["lr"] == 0.02 and ckpt["train_config"]["epochs"] == 2


def _fsize_limit(nbytes):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))


def test_disk_full_while_saving_is_one_line_and_leaves_no_temp_file(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(_train_cmd(out, "--epochs", "1"), env=ENV, capture_output=True,
                       text=True, preexec_fn=_fsize_limit(300_000))  # a checkpoint is ~1 MB
    assert r.returncode == 1
    line = _one_line_error(r.stderr, "ttq-train")
    assert "cannot write checkpoint" in line and "best.pt" in line
    assert not list(out.glob(".*.tmp"))


def _drop_dac() -> list[str]:
    """A command prefix under which root obeys permission bits (skip if impossible)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


# Runs each (prog, argv) of argv[1] (JSON) through its main() in this one process, as the
# entry points do, and prints [exit code, stderr] per command as JSON: one interpreter
# start (imports take seconds) instead of one per command.
_RUN_MAINS = """
import contextlib, io, json, sys
from reports.cli import main as report_main
from ttq_core.train.cli import main as train_main
results = []
for prog, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = {"ttq-train": train_main, "ttq-report": report_main}[prog](argv)
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_read_only_out_is_one_line(run_folder, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    commands = [("ttq-train", [*TINY, "--out", str(ro / "run"), "--epochs", "1"]),
                ("ttq-report", [str(run_folder / "best.pt"), "--out", str(ro / "rep"), *REPORT]),
                ("ttq-report", [str(run_folder / "best.pt"), "--out", str(ro / "sub" / "rep"),
                                *REPORT])]
    try:  # a real process that obeys the permission bits (as root: CAP_DAC_OVERRIDE dropped)
        r = subprocess.run(_drop_dac() + [sys.executable, "-c", _RUN_MAINS,
                                          json.dumps(commands)],
                           env=ENV, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        results = json.loads(r.stdout)
        assert len(results) == len(commands)
        for (prog, _), (code, stderr) in zip(commands, results):
            assert code == 1, stderr
            _one_line_error(stderr, prog)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------------------- bad checkpoints

def _edited(run_folder: Path, tmp_path: Path, edit) -> Path:
    ckpt = _state(run_folder / "best.pt")
    edit(ckpt)
    path = tmp_path / "edited.pt"
    torch.save(ckpt, path)
    return path


def _nan_weight(c):
    c["state_dict"]["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")


def _zero_std(c):
    c["normalization"]["std"] = [0.0, 0.24, 0.26]


def test_nan_weights_and_zero_std_are_refused_or_reported_under_a_warning(run_folder, tmp_path, capsys):
    for edit, what in ((_nan_weight, "non-finite"), (_zero_std, "not positive")):
        path = _edited(run_folder, tmp_path, edit)
        assert report_main([str(path), "--out", str(tmp_path / "r"), *REPORT]) == 1
        line = _one_line_error(capsys.readouterr().err, "ttq-report")
        assert what in line and "--allow-nonfinite" in line
        assert not (tmp_path / "r").exists()
    path = _edited(run_folder, tmp_path, _nan_weight)
    assert report_main([str(path), "--out", str(tmp_path / "r"), "--allow-nonfinite", *REPORT]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "broken-checkpoint" in html and "layer1.0.conv1.weight" in html
    json.loads((tmp_path / "r" / "analysis.json").read_text())  # still valid JSON


EDITS = {
    "history": lambda c: c.__setitem__("history", ["not an entry"]),
    "metrics": lambda c: c.__setitem__("metrics", "high"),
    "normalization": lambda c: c.__setitem__("normalization", "imagenet"),
    "arch_kwargs": lambda c: c.__setitem__("arch_kwargs", [10]),
    "arch_kwargs ": lambda c: c.__setitem__("arch_kwargs", {"depth_typo": 3}),
    "train_config": lambda c: c.__setitem__("train_config", 42),
}


@pytest.mark.parametrize("field", list(EDITS))
def test_hand_edited_fields_of_the_wrong_type_are_one_line(run_folder, tmp_path, capsys, field):
    path = _edited(run_folder, tmp_path, EDITS[field])
    assert report_main([str(path), "--out", str(tmp_path / "r"), *REPORT]) == 1
    line = _one_line_error(capsys.readouterr().err, "ttq-report")
    assert repr(field.strip()) in line


def test_optimizer_and_train_config_of_the_wrong_type_on_resume(run_folder, tmp_path, capsys):
    for field, value in (("optimizer", [1, 2]), ("train_config", "fast")):
        out = tmp_path / field
        shutil.copytree(run_folder, out)
        ckpt = _state(out / "last.pt")
        ckpt[field] = value
        torch.save(ckpt, out / "last.pt")
        assert train_main(["--out", str(out), "--resume", "--epochs", "4"]) == 1
        line = _one_line_error(capsys.readouterr().err, "ttq-train")
        assert field in line


def test_other_bad_report_inputs_are_one_line(run_folder, tmp_path, capsys):
    ckpt = str(run_folder / "best.pt")
    (tmp_path / "file").write_text("x")
    model = json.loads((REPO / "ttq_analysis" / "energy_models" / "horowitz45.json").read_text())
    model["ops"]["fp32_add"]["pJ"] = 1e308  # finite, but every total would overflow
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(model))
    cases = [(["--device", "bogus"], "bogus"),
             (["--json", str(tmp_path / "file" / "a.json")], "a.json"),
             (["--json", str(tmp_path)], "--json"),
             (["--energy-model", str(huge)], "pJ")]
    for extra, expect in cases:
        assert report_main([ckpt, "--out", str(tmp_path / "r"), *REPORT, *extra]) == 1, extra
        assert expect in _one_line_error(capsys.readouterr().err, "ttq-report"), extra
        assert not (tmp_path / "r").exists()
