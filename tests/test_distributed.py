"""Multi-process runs under torchrun on the CPU (gloo, 2 processes, a small CIFAR-10 subset):
the run completes, rank 0 alone writes one valid checkpoint, the history is reduced over
ranks (not rank 0's alone), a failing rank names itself, keeps the last good checkpoint
and ``--resume`` continues, and distributed analysis (``analyze`` and ``ttq-report``)
equals the single-process one exactly.  Plus the sharding arithmetic, without processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ttq_core.checkpoint import REQUIRED_KEYS, load_model
from ttq_core.data.device import DeviceData, batch_block, shard_order
from ttq_core.train import TrainConfig
from ttq_core.train.loop import Trainer, evaluate

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar

pytestmark = pytest.mark.distributed

NPROC = 2
# lr 0: the weights never move, so the test can recompute every rank's training loss
RUN = dict(data_dir=str(CIFAR_ARCHIVE), limit_train=256, limit_test=128, batch_size=32,
           mode="ttq", lr=0.0, warmup_epochs=0, grad_stats_every=1, device="cpu",
           progress=False)
ARGS = ["--data-dir", str(CIFAR_ARCHIVE), "--limit-train", "256", "--limit-test", "128",
        "--batch-size", "32", "--mode", "ttq", "--lr", "0", "--warmup-epochs", "0",
        "--grad-stats-every", "1", "--device", "cpu", "--no-progress"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TTQ_TEST_FAIL", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **extra)
    return env


def torchrun(args: list[str], timeout: int = 120, **env) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 <args>`` in a subprocess."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={NPROC}", *args]
    return subprocess.run(cmd, cwd=REPO, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = torchrun(["-m", "ttq_core.train", *ARGS, "--epochs", "2", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@needs_cifar
def test_torchrun_writes_one_checkpoint_with_the_contract(ddp_run):
    out, proc = ddp_run
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "log.jsonl"]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert set(REQUIRED_KEYS) <= set(ckpt) and "optimizer" in ckpt
    assert ckpt["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch_size": 64,
                                   "sync_bn": False}
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(ckpt["history"]))   # one entry per epoch, rank 0's
    assert proc.stdout.count("epoch   1/2") == 1                # one rank reports
    assert load_model(out / "last.pt").is_ternary
    for layer in ckpt["history"][-1]["layers"].values():        # gradient stats present
        assert layer["grad_abs_mean_zero"] is not None and layer["grad_abs_mean_zero"] > 0


@needs_cifar
def test_torchrun_history_is_reduced_over_ranks(ddp_run, tmp_path):
    out, _ = ddp_run
    history = torch.load(out / "last.pt", weights_only=True)["history"]
    # Recompute each rank's training loss: with lr 0 the model stays at its seeded
    # initialisation, and rank r trained on its shard of the epoch's permutation.
    ref = Trainer(TrainConfig(epochs=2, out=str(tmp_path / "ref"), **RUN))
    ref.model.train()
    for epoch, entry in enumerate(history):
        sums, counts, rights = [], [], []
        for rank in range(NPROC):
            gen = torch.Generator().manual_seed(ref.cfg.seed * 1_000_003 + epoch)
            loss = right = n = 0
            with torch.no_grad():
                for x, y in ref.data.train.batches(32, shuffle=True, augment=True, generator=gen,
                                                   drop_last=True, shard=(rank, NPROC)):
                    logits = ref.model(x)
                    loss += float(F.cross_entropy(logits, y)) * len(y)
                    right += int((logits.argmax(1) == y).sum())
                    n += len(y)
            sums.append(loss), counts.append(n), rights.append(right)
        assert sum(counts) == 256
        assert entry["train_loss"] == pytest.approx(sum(sums) / sum(counts), rel=1e-5)
        assert entry["train_loss"] != pytest.approx(sums[0] / counts[0], rel=1e-4)  # not rank 0's
        assert entry["train_acc"] == pytest.approx(sum(rights) / 256, abs=1.01 / 256)


@needs_cifar
def test_torchrun_test_accuracy_equals_single_process(ddp_run):
    out, _ = ddp_run
    ckpt = torch.load(out / "last.pt", weights_only=True)
    loaded = load_model(out / "last.pt")
    from ttq_core.data import cifar10_split
    test = cifar10_split("test", ckpt["normalization"], str(CIFAR_ARCHIVE), limit=128,
                         progress=False)
    loss, acc = evaluate(loaded.model, test, 500, torch.device("cpu"))
    assert ckpt["metrics"]["test_acc"] == acc
    assert ckpt["metrics"]["test_loss"] == pytest.approx(loss, rel=1e-6)


ANALYZE = """
import sys
from ttq_core import distributed
from ttq_core.data import cifar10_split
from ttq_analysis import analyze
import torch

ckpt, archive, out = sys.argv[1:4]
with distributed.session("cpu"):
    norm = torch.load(ckpt, weights_only=True)["normalization"]
    data = cifar10_split("test", norm, archive, limit=300, progress=False)
    seen = []  # images this rank ran through the model (not the 1-image shape probes)

    def count(module, args):
        if type(module).__name__ == "CifarResNet" and args[0].shape[0] > 1:
            seen.append(args[0].shape[0])
    handle = torch.nn.modules.module.register_module_forward_pre_hook(count)
    a = analyze(ckpt, data=data, device="cpu", progress=False)
    handle.remove()
    print(f"rank {distributed.rank()} ran {sum(seen)} images", flush=True)
    if distributed.is_main():
        a.to_json(out)
"""


@needs_cifar
def test_distributed_analysis_equals_single_process(ddp_run, tmp_path):
    out, _ = ddp_run
    script = tmp_path / "analyze_worker.py"
    script.write_text(ANALYZE)
    args = [str(script), str(out / "last.pt"), str(CIFAR_ARCHIVE)]
    single = subprocess.run([sys.executable, *args, str(tmp_path / "single.json")], cwd=REPO,
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr[-3000:]
    multi = torchrun([*args, str(tmp_path / "multi.json")])
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert "rank 0 ran 300 images" in single.stdout
    # the two ranks split the two batches (256 + 44 images) instead of each running all
    assert "rank 0 ran 256 images" in multi.stdout and "rank 1 ran 44 images" in multi.stdout
    a = json.loads((tmp_path / "single.json").read_text())
    b = json.loads((tmp_path / "multi.json").read_text())
    assert a["network"]["images"] == b["network"]["images"] == 300
    cols = a["layers"]["columns"]
    for name in ("act_sparsity", "act_sparsity_p50", "effective_macs", "effective_adds",
                 "effective_mults"):
        i = cols.index(name)
        assert [r[i] for r in a["layers"]["data"]] == [r[i] for r in b["layers"]["data"]], name
    assert a == b  # everything: per-layer table, totals, histograms, meta
    # ttq-report under torchrun: the ranks measure, rank 0 alone renders the same numbers
    report = torchrun(["-m", "reports.cli", str(out / "last.pt"), "--data-dir", str(CIFAR_ARCHIVE),
                       "--limit-test", "300", "--no-progress", "--out", str(tmp_path / "report")])
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stdout.count("report: ") == 1 and (tmp_path / "report" / "report.html").exists()
    (net,) = json.loads((tmp_path / "report" / "analysis.json").read_text())["networks"]
    assert net["analysis"]["layers"] == a["layers"] and net["analysis"]["histograms"] == a["histograms"]


@needs_cifar
def test_failing_rank_names_itself_keeps_checkpoint_and_resume_completes(tmp_path):
    out = tmp_path / "run"
    common = ["-m", "ttq_core.train", *ARGS, "--lr", "0.02", "--epochs", "2", "--out", str(out)]
    failed = torchrun(common, TTQ_TEST_FAIL_RANK="1", TTQ_TEST_FAIL_EPOCH="2")
    assert failed.returncode != 0
    assert "ttq-train: error: rank 1: RuntimeError: injected test failure" in failed.stderr
    last = torch.load(out / "last.pt", weights_only=True)           # epoch 1, intact
    assert [h["epoch"] for h in last["history"]] == [1]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    load_model(out / "last.pt")
    resumed = torchrun(["-m", "ttq_core.train", "--out", str(out), "--resume", "--epochs", "2",
                        "--device", "cpu", "--no-progress", "--data-dir", str(CIFAR_ARCHIVE)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = torch.load(out / "last.pt", weights_only=True)
    assert [h["epoch"] for h in done["history"]] == [1, 2]
    assert done["history"][0] == last["history"][0]
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2]


@needs_cifar
def test_sync_bn_on_cpu_is_a_one_line_error(tmp_path):
    proc = torchrun(["-m", "ttq_core.train", *ARGS, "--epochs", "1", "--sync-bn",
                     "--out", str(tmp_path / "x")])
    assert proc.returncode != 0
    assert "ttq-train: error: rank 0: --sync-bn needs CUDA devices (NCCL)" in proc.stderr
    assert "Traceback" not in proc.stderr.split("ttq-train: error:")[0]
    assert not (tmp_path / "x" / "last.pt").exists()


# ----- the sharding arithmetic (no processes)

def test_training_shards_are_disjoint_equal_and_world1_is_unchanged():
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    full = shard_order(103, (0, 1), shuffle=True, generator=gen())
    assert torch.equal(full, torch.randperm(103, generator=gen()))
    parts = [shard_order(103, (r, 4), shuffle=True, drop_last=True, generator=gen())
             for r in range(4)]
    assert {len(p) for p in parts} == {25}
    assert sorted(torch.cat(parts).tolist()) == sorted(full[:100].tolist())
    # world 1: the very batches (and augmentation) of an unsharded call
    data = DeviceData(torch.randint(0, 255, (70, 3, 32, 32), dtype=torch.uint8),
                      torch.arange(70) % 10, [0.5] * 3, [0.25] * 3)
    a = list(data.batches(16, shuffle=True, augment=True, generator=gen(), drop_last=True))
    b = list(data.batches(16, shuffle=True, augment=True, generator=gen(), drop_last=True,
                          shard=(0, 1)))
    assert all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b))
    assert data.num_batches(16, drop_last=True, shard=(1, 2)) == 2


def test_evaluation_blocks_are_the_single_process_batches():
    data = DeviceData(torch.randint(0, 255, (70, 3, 8, 8), dtype=torch.uint8),
                      torch.arange(70) % 10, [0.5] * 3, [0.25] * 3)
    whole = list(data.batches(16))
    n = data.num_batches(16)
    blocks = [batch_block(n, (r, 3)) for r in range(3)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(blocks[i][1] == blocks[i + 1][0] for i in range(2))
    pieces = [b for lo_hi in blocks for b in data.batches(16, batch_range=lo_hi)]
    assert len(pieces) == len(whole)
    assert all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(whole, pieces))
