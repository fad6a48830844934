"""``ttq-train`` fails cleanly on user mistakes: a non-zero exit, one ``ttq-train: error:``
line at the end of stderr, no traceback, and no training started (nothing written).

Each case runs ``ttq_core.train.cli.main`` in this process with stdout/stderr captured
and any uncaught exception turned into a traceback on stderr (as the interpreter would
print it), which saves a Python + torch start per case; ``test_entry_point_subprocess``
runs the real ``python -m ttq_core.train`` once.  Cases that get as far as
loading data point at the real archive ``../shared/data/cifar10-jpeg.tar.gz`` (decoded
arrays are cached in the default cache, ~/.cache/ttq, so only the very first run
decodes it) and pass small --limit-*/--epochs values in case a run could start.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ttq_core.checkpoint import save_checkpoint
from ttq_core.models import build_model
from ttq_core.quantize import quant_record, ternarize

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = Path(os.environ.get("TTQ_TEST_ARCHIVE",
                             REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
if not ARCHIVE.is_file():  # e.g. a checkout elsewhere; the documented shared location
    ARCHIVE = Path("/work/shared/data/cifar10-jpeg.tar.gz")
TIMEOUT = 300  # seconds; generous for a first, uncached decode of the archive

needs_archive = pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"{ARCHIVE} not available")

SMALL = ["--no-progress", "--limit-train", "64", "--limit-test", "64", "--epochs", "1",
         "--batch-size", "32"]


def run_train(*args: str, out: Path, cwd: Path, data: str | None = None,
              small: bool = True) -> subprocess.CompletedProcess:
    """``ttq-train ARGS --out OUT [--data-dir DATA] [SMALL]`` in this process: exit code,
    stdout and stderr as a subprocess would give them."""
    import contextlib
    import io
    import traceback

    from ttq_core.train.cli import main
    argv = [*args, "--out", str(out)] + (["--data-dir", data] if data is not None else []) \
        + (SMALL if small else [])
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env = os.environ.pop("TTQ_DATA_DIR", None)  # every case names its data source
    saved_cwd = os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # what the interpreter would print: a traceback
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        if saved_env is not None:
            os.environ["TTQ_DATA_DIR"] = saved_env
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def run_train_subprocess(*args: str, out: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real ``python -m ttq_core.train ARGS --out OUT``."""
    env = dict(os.environ)
    env.pop("TTQ_DATA_DIR", None)  # every case names its data source explicitly
    # TTQ_CACHE_DIR is deliberately left as is: reuse the default decoded-array cache.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONWARNINGS"] = "ignore"
    cmd = [sys.executable, "-m", "ttq_core.train", *args, "--out", str(out)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str,
                       code: int | None = 1) -> str:
    """Non-zero exit, last non-empty stderr line 'ttq-train: error: ...', no traceback."""
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode != 0, report
    if code is not None:
        assert proc.returncode == code, report
    assert "Traceback" not in proc.stderr, report
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines, report
    last = lines[-1]
    assert last.startswith("ttq-train: error:"), report
    for frag in fragments:
        assert frag in last, f"{frag!r} not in {last!r}\n{report}"
    return last


def assert_not_trained(proc: subprocess.CompletedProcess, out: Path) -> None:
    assert "epoch " not in proc.stdout, proc.stdout
    for name in ("last.pt", "best.pt", "log.jsonl"):
        assert not (out / name).exists(), f"{name} was written: a run started"


def toolkit_ckpt(ternary: bool = False) -> dict:
    torch.manual_seed(0)
    model = build_model("resnet20")
    if ternary:
        ternarize(model)
    return {
        "format_version": 1, "arch": "resnet20", "arch_kwargs": dict(model.arch_kwargs),
        "dataset": "cifar10",
        "normalization": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]},
        "quant": quant_record(model),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "history": [], "metrics": {},
    }


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "run"


@pytest.fixture(scope="module")
def good_ckpt_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "fp.pt"
    save_checkpoint(toolkit_ckpt(), path)
    return path.read_bytes()


# --------------------------------------------------------------------------- --init


@needs_archive
def test_init_missing_file(tmp_path, out):
    proc = run_train("--init", str(tmp_path / "nope.pt"), out=out, cwd=tmp_path,
                     data=str(ARCHIVE))
    assert_clean_error(proc, "nope.pt", "does not exist")
    assert_not_trained(proc, out)


@needs_archive
def test_init_folder(tmp_path, out):
    (tmp_path / "fp-run").mkdir()
    proc = run_train("--init", str(tmp_path / "fp-run"), out=out, cwd=tmp_path,
                     data=str(ARCHIVE))
    assert_clean_error(proc, "folder")
    assert_not_trained(proc, out)


@needs_archive
def test_init_truncated_checkpoint(tmp_path, out, good_ckpt_bytes):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good_ckpt_bytes[: len(good_ckpt_bytes) // 2])
    proc = run_train("--mode", "ttq", "--init", str(cut), out=out, cwd=tmp_path,
                     data=str(ARCHIVE))
    assert_clean_error(proc, "cut.pt", "truncated or corrupted")
    assert_not_trained(proc, out)


def _bitrot(data: bytes) -> bytes:
    b = bytearray(data)
    at = b.find(b"data.pkl")
    b[at + 40: at + 104] = b"\xff" * 64
    return bytes(b)


@needs_archive
@pytest.mark.parametrize("kind", [
    "random-bytes",
    "overwritten-pickle",
    "text",
])
def test_init_corrupted_file(tmp_path, out, good_ckpt_bytes, kind):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes({
        "random-bytes": random.Random(0).randbytes(4096),
        "overwritten-pickle": _bitrot(good_ckpt_bytes),
        "text": b"this is not a checkpoint\n" * 50,
    }[kind])
    proc = run_train("--mode", "ttq", "--init", str(bad), out=out, cwd=tmp_path,
                     data=str(ARCHIVE))
    assert_clean_error(proc, "corrupt.pt")
    assert_not_trained(proc, out)


@needs_archive
def test_init_checkpoint_of_other_arch(tmp_path, out, good_ckpt_bytes):
    ckpt = tmp_path / "r20.pt"
    ckpt.write_bytes(good_ckpt_bytes)
    proc = run_train("--arch", "resnet32", "--mode", "ttq", "--init", str(ckpt), out=out,
                     cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "resnet20", "resnet32")
    assert_not_trained(proc, out)


@needs_archive
def test_init_ternary_checkpoint_for_fp(tmp_path, out):
    ckpt = tmp_path / "ttq.pt"
    save_checkpoint(toolkit_ckpt(ternary=True), ckpt)
    proc = run_train("--mode", "fp", "--init", str(ckpt), out=out, cwd=tmp_path,
                     data=str(ARCHIVE))
    assert_clean_error(proc, "ternary", "--mode fp")
    assert_not_trained(proc, out)


# --------------------------------------------------------------------------- --data-dir


def test_data_dir_missing(tmp_path, out):
    proc = run_train(out=out, cwd=tmp_path, data="/nonexistent/x.tar.gz")
    assert_clean_error(proc, "/nonexistent/x.tar.gz", "does not exist")
    assert_not_trained(proc, out)
    assert not Path("/nonexistent").exists(), "a download folder was created"


def test_data_dir_junk_folder(tmp_path, out):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not cifar\n")
    (junk / "blob.bin").write_bytes(random.Random(1).randbytes(3000))
    (junk / "sub").mkdir()
    proc = run_train(out=out, cwd=tmp_path, data=str(junk))
    assert_clean_error(proc, "no CIFAR-10 data", "notes.txt")
    assert_not_trained(proc, out)
    assert sorted(p.name for p in junk.iterdir()) == ["blob.bin", "notes.txt", "sub"]


def test_data_dir_junk_archive(tmp_path, out):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "cifar.tar.gz").write_bytes(random.Random(2).randbytes(3000))
    proc = run_train(out=out, cwd=tmp_path, data=str(junk))
    assert_clean_error(proc, "cifar.tar.gz", "corrupted")
    assert_not_trained(proc, out)


# --------------------------------------------------------------------------- options


@needs_archive
def test_unknown_arch(tmp_path, out):
    proc = run_train("--arch", "nosuchnet", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "nosuchnet", "resnet20")
    assert_not_trained(proc, out)


@needs_archive
@pytest.mark.parametrize("args, fragments", [
    (["--epochs", "0"], ["--epochs", "at least 1"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--threshold", "1.5", "--mode", "ttq"], ["1.5"]),
    (["--target-sparsity", "1.5", "--mode", "ttq"], ["1.5"]),
    (["--mode", "fp", "--target-sparsity", "0.5"], ["--mode", "ttq"]),
    (["--mode", "fp", "--layer-threshold", "layer3.*=0.1"], ["--mode", "ttq"]),
    (["--mode", "ttq", "--layer-threshold", "nosuchlayer.*=0.1"], ["nosuchlayer"]),
    (["--mode", "ttq", "--keep-fp", "nosuchlayer"], ["nosuchlayer"]),
], ids=["epochs-0", "batch-size-0", "threshold-1.5", "sparsity-1.5", "fp-with-sparsity",
        "fp-with-layer-threshold", "unmatched-layer-threshold", "unmatched-keep-fp"])
def test_bad_option_values(tmp_path, out, args, fragments):
    # SMALL comes after ARGS on the command line, so --epochs/--batch-size are given
    # here without SMALL's values overriding them.
    small = list(SMALL)
    for flag in ("--epochs", "--batch-size"):
        if flag in args:
            i = small.index(flag)
            del small[i:i + 2]
    proc = run_train(*args, *small, out=out, cwd=tmp_path, data=str(ARCHIVE), small=False)
    assert_clean_error(proc, *fragments)
    assert_not_trained(proc, out)


@pytest.mark.parametrize("args, fragment", [
    (["--layer-threshold", "noequals"], "GLOB=VALUE"),
    (["--layer-threshold", "layer3.*=abc"], "not a number"),
    (["--mode", "int8"], "--mode"),
    (["--epochs", "many"], "--epochs"),
], ids=["layer-threshold-noequals", "layer-threshold-nan", "bad-mode", "epochs-text"])
def test_argparse_errors(tmp_path, out, args, fragment):
    proc = run_train(*args, out=out, cwd=tmp_path, data="/nonexistent/x.tar.gz")
    assert_clean_error(proc, fragment, code=2)
    assert_not_trained(proc, out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_device_cuda_without_cuda(tmp_path, out):
    proc = run_train("--device", "cuda", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "--device", "cpu")
    assert_not_trained(proc, out)


def test_device_nonsense(tmp_path, out):
    proc = run_train("--device", "gpu-please", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "gpu-please")
    assert_not_trained(proc, out)


# --------------------------------------------------------------------------- --out / --resume


def test_resume_without_last_pt(tmp_path, out):
    out.mkdir()
    (out / "best.pt").write_bytes(b"not the resumable one")
    proc = run_train("--resume", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "last.pt", "nothing to resume")
    assert sorted(p.name for p in out.iterdir()) == ["best.pt"]


def test_resume_from_checkpoint_without_training_state(tmp_path, out, good_ckpt_bytes):
    out.mkdir()
    (out / "last.pt").write_bytes(good_ckpt_bytes)  # a valid checkpoint, but no optimizer
    proc = run_train("--resume", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "last.pt", "resume")
    assert (out / "last.pt").read_bytes() == good_ckpt_bytes
    assert not (out / "log.jsonl").exists()


def test_resume_from_corrupted_last_pt(tmp_path, out, good_ckpt_bytes):
    out.mkdir()
    cut = good_ckpt_bytes[: len(good_ckpt_bytes) // 2]
    (out / "last.pt").write_bytes(cut)
    proc = run_train("--resume", out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "last.pt", "truncated or corrupted")
    assert (out / "last.pt").read_bytes() == cut


@pytest.mark.parametrize("content", [b"any bytes at all\n", None], ids=["junk", "checkpoint"])
def test_new_run_refuses_existing_last_pt(tmp_path, out, good_ckpt_bytes, content):
    out.mkdir()
    content = good_ckpt_bytes if content is None else content
    (out / "last.pt").write_bytes(content)
    stat = (out / "last.pt").stat()
    proc = run_train(out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, "already holds a run", "--resume")
    assert (out / "last.pt").read_bytes() == content
    assert (out / "last.pt").stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]


# --------------------------------------------------------------------------- --threshold-plan

@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    ('{"format": "ttq-threshold-plan", "version": 1, "rule": "sparsity", '
     '"layers": {"layer1.0.conv1": 1.5}}', "must be in [0.0, 1.0)"),
    ('{"format": "ttq-threshold-plan", "version": 1, "rule": "sparsity", '
     '"layers": {"nope.conv": 0.5}}', "no sparsity value for ternary layer"),
], ids=["missing", "junk", "bad-value", "other-model"])
@needs_archive
def test_bad_threshold_plan(tmp_path, out, good_ckpt_bytes, content, fragment):
    init = tmp_path / "fp.pt"
    init.write_bytes(good_ckpt_bytes)
    plan = tmp_path / "plan.json"
    if content is not None:
        plan.write_text(content)
    proc = run_train("--mode", "ttq", "--init", str(init), "--threshold-plan", str(plan),
                     out=out, cwd=tmp_path, data=str(ARCHIVE))
    assert_clean_error(proc, fragment)
    assert_not_trained(proc, out)


def test_entry_point_subprocess(tmp_path, out):
    """The real ``python -m ttq_core.train``: a bad flag value is one line, exit 1, no run."""
    proc = run_train_subprocess("--mode", "ttq", "--init", str(tmp_path / "nope.pt"),
                                "--data-dir", str(tmp_path / "no-data"), "--no-progress",
                                out=out, cwd=tmp_path)
    assert_clean_error(proc, "nope.pt", "does not exist")
    assert_not_trained(proc, out)
