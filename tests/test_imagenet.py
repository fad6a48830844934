"""The ImageNet path on a tiny generated tree (3 classes x 4 train + 2 val JPEGs of 64x48):
one training step through ``ttq-train --dataset imagenet`` writes the same checkpoint and
history format as CIFAR-10; bad trees are one-line errors; the Pillow transforms; presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ttq_core.checkpoint import REQUIRED_KEYS, load_model
from ttq_core.data.imagenet import (IMAGENET_MEAN, LoaderData, load_train_image,
                                    load_val_image, random_resized_box, scan_imagenet)
from ttq_core.errors import DataError
from ttq_core.train.cli import main, parse_args
from ttq_core.train.presets import PRESETS

WNIDS = ("n01440764", "n01443537", "n01484850")


def make_tree(root, train=4, val=2, classes=WNIDS, size=(64, 48)):
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for wnid in classes:
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "imagenet")


def test_one_step_writes_the_same_checkpoint_and_history_format(tree, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--dataset", "imagenet", "--data-dir", str(tree), "--arch", "resnet18",
               "--mode", "ttq", "--epochs", "1", "--batch-size", "12", "--image-size", "32",
               "--workers", "1", "--grad-stats-every", "1", "--device", "cpu", "--no-progress",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert set(REQUIRED_KEYS) <= set(ckpt)
    assert ckpt["dataset"] == "imagenet" and ckpt["arch"] == "resnet18"
    assert ckpt["arch_kwargs"]["num_classes"] == 3
    assert ckpt["normalization"]["mean"] == list(IMAGENET_MEAN)
    assert ckpt["metrics"]["train_images"] == 12 and ckpt["metrics"]["test_images"] == 6
    (entry,) = ckpt["history"]
    assert {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds",
            "layers"} == set(entry)
    assert entry["layers"] and all(
        {"frac_pos", "frac_zero", "frac_neg", "wp", "wn", "delta", "grad_abs_mean_pos"} <= set(s)
        for s in entry["layers"].values())
    assert json.loads((out / "log.jsonl").read_text()) == json.loads(json.dumps(entry))
    model = load_model(out / "best.pt").model
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("breakage, fragment", [
    ("no_val", "has no val/ folder"),
    ("class_mismatch", "train/ and val/ class folders differ (only in train/: n01484850"),
    ("no_jpegs", "holds no images"),
    ("missing", "does not exist"),
])
def test_bad_trees_are_one_line_errors(tmp_path, capsys, breakage, fragment):
    root = tmp_path / "imagenet"
    if breakage == "no_val":
        make_tree(root, val=0)
        for d in (root / "val").iterdir():
            d.rmdir()
        (root / "val").rmdir()
    elif breakage == "class_mismatch":
        make_tree(root, train=1, val=0)
        for wnid in WNIDS[:2]:
            (root / "val" / wnid / "x.JPEG").write_bytes((root / "train" / wnid / f"{wnid}_0.JPEG").read_bytes())
        (root / "val" / WNIDS[2]).rmdir()
    elif breakage == "no_jpegs":
        for split in ("train", "val"):
            for wnid in WNIDS:
                (root / split / wnid).mkdir(parents=True)
                (root / split / wnid / "notes.txt").write_text("not an image")
    rc = main(["--dataset", "imagenet", "--data-dir", str(root), "--arch", "resnet18",
               "--epochs", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("ttq-train: error: ") and err.count("\n") == 1, err
    assert fragment in err
    assert not (tmp_path / "o" / "last.pt").exists()


def test_corrupted_jpeg_is_a_one_line_data_error(tree):
    bad = tree / "val" / WNIDS[0] / f"{WNIDS[0]}_0.JPEG"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    _, _, val = scan_imagenet(tree)
    data = LoaderData(val, 32, IMAGENET_MEAN, (0.2, 0.2, 0.2), workers=1)
    with pytest.raises(DataError, match=r"^image .*_0.JPEG cannot be decoded") as info:
        list(data.batches(4))
    assert "\n" not in str(info.value)


def test_transforms_shapes_determinism_and_boxes(tree):
    classes, train, val = scan_imagenet(tree)
    assert classes == WNIDS and len(train) == 12 and len(val) == 6
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    path = train.paths[0]
    a = load_train_image(path, 40, (5, 0))
    assert a.shape == (3, 40, 40) and a.dtype == np.uint8
    assert np.array_equal(a, load_train_image(path, 40, (5, 0)))       # seeded
    assert load_val_image(path, 40).shape == (3, 40, 40)
    rng = np.random.default_rng(1)
    for _ in range(200):
        left, top, w, h = random_resized_box(64, 48, rng)
        assert 0 <= left and left + w <= 64 and 0 <= top and top + h <= 48 and w > 0 and h > 0
    # an epoch's batches do not depend on the number of workers
    data0 = LoaderData(train, 32, IMAGENET_MEAN, (0.2, 0.2, 0.2), workers=0)
    data2 = LoaderData(train, 32, IMAGENET_MEAN, (0.2, 0.2, 0.2), workers=2)
    b0 = list(data0.batches(5, shuffle=True, augment=True, drop_last=True,
                            generator=torch.Generator().manual_seed(3)))
    b2 = list(data2.batches(5, shuffle=True, augment=True, drop_last=True,
                            generator=torch.Generator().manual_seed(3)))
    assert len(b0) == 2 and all(torch.equal(x, u) and torch.equal(y, v)
                                for (x, y), (u, v) in zip(b0, b2))


def test_presets_set_defaults_and_flags_win():
    args = parse_args(["--preset", "imagenet-alexnet-bn", "--epochs", "3"])
    alexnet = PRESETS["imagenet-alexnet-bn"].settings
    assert args.arch == "alexnet_bn" and args.dataset == "imagenet" and args.mode == "ttq"
    assert args.epochs == 3                                   # the explicit flag wins
    assert args.lr == alexnet["lr"] and args.milestones == alexnet["milestones"]
    args = parse_args(["--preset", "imagenet-resnet18"])
    assert args.arch == "resnet18" and args.threshold == 0.05
    for preset in PRESETS.values():                           # every field is a real option
        assert set(preset.settings) <= set(vars(args)), preset.name
        assert preset.reference["threshold_t"] == 0.05
    with pytest.raises(SystemExit):
        parse_args(["--preset", "nope"])


def test_ttq_report_measures_on_the_imagenet_val_split(tree, tmp_path, capsys):
    from reports.cli import main as report_main
    run = tmp_path / "run"
    assert main(["--dataset", "imagenet", "--data-dir", str(tree), "--arch", "resnet18",
                 "--mode", "ttq", "--epochs", "1", "--batch-size", "12", "--image-size", "32",
                 "--workers", "0", "--device", "cpu", "--no-progress", "--out", str(run)]) == 0
    out = tmp_path / "report"
    rc = report_main([str(run / "best.pt"), "--dataset", "imagenet", "--data-dir", str(tree),
                      "--image-size", "32", "--workers", "0", "--device", "cpu",
                      "--no-progress", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "analysis.json").read_text())
    net = data["networks"][0]["analysis"]
    assert net["meta"]["images"] == 6                       # 3 classes x 2 val images
    assert net["meta"]["input_shape"] == [3, 32, 32]
    # by hand: the ResNet-18 figure of ARCHITECTURE.md ("Reference figures") at 224x224 is 1,814,073,344 conv+fc MACs, fc
    # being 512 x 1000; at 32x32 every feature map is 7x smaller per side (112 -> 16, ...,
    # 7 -> 1), so the convs cost 1/49, and fc is 512 x 3 here
    assert net["network"]["macs"] == (1_814_073_344 - 512 * 1000) / 49 + 512 * 3
    html = (out / "report.html").read_text()
    assert "6 images of the ImageNet val split" in html
    assert "JPEG copy of CIFAR-10" not in html
    # no --data-dir: a one-line error
    rc = report_main([str(run / "best.pt"), "--dataset", "imagenet", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 1 and "--dataset imagenet needs --data-dir" in err
