"""Tests of ttq_core.data.cifar10: every kind of data source, the cache, the download.

The real archive (../shared/data/cifar10-jpeg.tar.gz) is decoded at most once per
machine: the session fixture uses the default array cache (~/.cache/ttq/arrays or
$TTQ_CACHE_DIR).  Everything else runs on tiny synthetic data made here.  The network
is never touched: urlopen is replaced by a function that fails the test.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ttq_core.data import (
    ArraySplit,
    CifarArrays,
    balanced_subset,
    default_cache_dir,
    default_data_dir,
    load_cifar10,
)
from ttq_core.data import cifar10 as mod  # noqa: E402
from ttq_core.data import cifar10_decode  # noqa: E402
from ttq_core.errors import DataError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL_ARCHIVE = SHARED / "cifar10-jpeg.tar.gz"
README_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
README_MEAN = (0.4913, 0.4821, 0.4465)
README_STD = (0.2452, 0.2428, 0.2606)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --------------------------------------------------------------------------- the real archive


@pytest.fixture(scope="session")
def real() -> CifarArrays:
    if not REAL_ARCHIVE.is_file():
        pytest.skip(f"real data {REAL_ARCHIVE} is absent (see ../shared/data/README.md)")
    # default cache_dir on purpose: the ~25 CPU-second decode happens once per machine
    return load_cifar10(REAL_ARCHIVE, download=False, progress=False)


def test_real_archive_counts_and_shapes(real):
    assert real.classes == README_CLASSES
    assert real.train.images.shape == (50000, 3, 32, 32)
    assert real.test.images.shape == (10000, 3, 32, 32)
    for split, per_class in ((real.train, 5000), (real.test, 1000)):
        assert split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert split.labels.shape == (split.images.shape[0],)
        for k in range(10):
            assert int((split.labels == k).sum()) == per_class
    assert "cifar10-jpeg.tar.gz" in real.source


def test_real_archive_channel_stats(real):
    mean, std = real.channel_stats()
    assert np.allclose(mean, README_MEAN, atol=0.002), mean
    assert np.allclose(std, README_STD, atol=0.002), std
    # cross-check the histogram implementation on a slice with plain float64 numpy
    some = real.train.images[::50].astype(np.float64) / 255.0
    sub = CifarArrays(ArraySplit(real.train.images[::50], real.train.labels[::50]), real.test, real.classes, "x")
    m2, s2 = sub.channel_stats()
    assert np.allclose(m2, some.mean(axis=(0, 2, 3)), atol=1e-12)
    assert np.allclose(s2, some.std(axis=(0, 2, 3)), atol=1e-12)


def test_real_folder_gives_same_arrays(real):
    again = load_cifar10(SHARED, download=False, progress=False)
    assert again.classes == real.classes
    for a, b in ((again.train, real.train), (again.test, real.test)):
        assert np.array_equal(a.images, b.images)
        assert np.array_equal(a.labels, b.labels)


# --------------------------------------------------------------------------- synthetic image trees

# deliberately not created in sorted order: labels must follow the sorted names
SYN_CLASSES = ["zebra", "apple", "cow", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay"]
PER_CLASS = 2


def pixel(split: str, cls: str, i: int) -> np.ndarray:
    """The HWC uint8 image stored for (split, class, item i): a small known pattern."""
    k = sorted(SYN_CLASSES).index(cls)
    s = 0 if split == "train" else 1
    y, x = np.mgrid[0:32, 0:32]
    img = np.empty((32, 32, 3), dtype=np.uint8)
    img[..., 0] = 10 * k + i + x  # red varies along x
    img[..., 1] = 100 * s + 3 * i + y  # green varies along y
    img[..., 2] = 200 + 5 * k + i
    return img


def make_tree(root: Path, classes=SYN_CLASSES, size=(32, 32)) -> Path:
    for split in ("train", "test"):
        for cls in classes:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(PER_CLASS):
                img = pixel(split, cls, i)
                if size != (32, 32):
                    img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}.png")
    return root


def expected_split(split: str):
    names = sorted(SYN_CLASSES)
    imgs, labels = [], []
    for k, cls in enumerate(names):
        for i in range(PER_CLASS):
            imgs.append(pixel(split, cls, i).transpose(2, 0, 1))
            labels.append(k)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


def assert_synthetic(arr: CifarArrays):
    assert arr.classes == tuple(sorted(SYN_CLASSES))
    for name in ("train", "test"):
        split = getattr(arr, name)
        exp_images, exp_labels = expected_split(name)
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        assert split.images.shape == (10 * PER_CLASS, 3, 32, 32)
        assert np.array_equal(split.images, exp_images)
        assert np.array_equal(split.labels, exp_labels)
    # spot check CHW/RGB by hand: train, class "apple" (label 0), item 1, y=2, x=3
    assert arr.train.labels[1] == 0
    assert tuple(arr.train.images[1, :, 2, 3]) == (0 + 1 + 3, 0 + 3 + 2, 200 + 0 + 1)
    # test, class "zebra" (label 9), item 0, y=5, x=7
    assert arr.test.labels[18] == 9
    assert tuple(arr.test.images[18, :, 5, 7]) == (90 + 0 + 7, 100 + 0 + 5, 200 + 45 + 0)


def make_targz(src_dir: Path, out: Path, arcname_root: str | None) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for p in sorted(src_dir.rglob("*"), reverse=True):  # scrambled member order
            rel = p.relative_to(src_dir).as_posix()
            if p.is_file():
                tar.add(p, arcname=f"{arcname_root}/{rel}" if arcname_root else rel, recursive=False)
    return out


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_image_folder_tree(tmp_path, cache):
    tree = make_tree(tmp_path / "tree")
    before = listing(tmp_path / "tree")
    arr = load_cifar10(tree, cache_dir=cache, download=False, progress=False)
    assert_synthetic(arr)
    assert listing(tmp_path / "tree") == before, "nothing may be written beside the source"
    # a folder containing the tree
    parent = load_cifar10(tmp_path, cache_dir=cache, download=False, progress=False)
    assert_synthetic(parent)
    assert len(list((cache / "arrays").glob("cifar10-*.npz"))) == 1


@pytest.mark.parametrize("top", [None, "cifar10-images"])
def test_image_tree_targz(tmp_path, cache, top):
    tree = make_tree(tmp_path / "tree")
    (tmp_path / "arch").mkdir()
    archive = make_targz(tree, tmp_path / "arch" / "imgs.tgz", top)
    assert_synthetic(load_cifar10(archive, cache_dir=cache, download=False, progress=False))
    # a folder holding exactly one archive; served from the same cache entry
    assert_synthetic(load_cifar10(tmp_path / "arch", cache_dir=cache, download=False, progress=False))
    assert listing(tmp_path / "arch") == ["imgs.tgz"]


def test_pool_decoding_and_worker_errors(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(cifar10_decode, "_POOL_MIN_FILES", 1)
    monkeypatch.setattr(cifar10_decode, "_POOL_CHUNK", 3)
    tree = make_tree(tmp_path / "tree")
    assert_synthetic(load_cifar10(tree, cache_dir=cache, download=False, progress=False))
    Image.new("RGB", (31, 32)).save(tree / "test" / "eel" / "0005.png")
    with pytest.raises(DataError, match="0005.png"):
        load_cifar10(tree, cache_dir=cache, download=False, progress=False)


def test_channel_stats_synthetic(tmp_path, cache):
    arr = load_cifar10(make_tree(tmp_path / "t"), cache_dir=cache, download=False, progress=False)
    imgs = np.stack([pixel("train", c, i) for c in SYN_CLASSES for i in range(PER_CLASS)]) / 255.0
    mean, std = arr.channel_stats()
    assert np.allclose(mean, imgs.mean(axis=(0, 1, 2)), atol=1e-12)
    assert np.allclose(std, imgs.std(axis=(0, 1, 2)), atol=1e-12)
    # blue is constant per image: its mean is the average of 200 + 5k + i over k, i
    assert mean[2] == pytest.approx(np.mean([200 + 5 * k + i for k in range(10) for i in range(2)]) / 255)


# --------------------------------------------------------------------------- fake official batches

OFFICIAL_NAMES = [f"name{k}" for k in range(10)]
ROWS = 3  # images per fake batch


def fake_batch(b: int) -> tuple[np.ndarray, list[int]]:
    data = ((np.arange(ROWS * 3072).reshape(ROWS, 3072) * 7 + 13 * b) % 251).astype(np.uint8)
    labels = [(b + r) % 10 for r in range(ROWS)]
    return data, labels


def write_official(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for b in range(1, 7):
        data, labels = fake_batch(b)
        name = f"data_batch_{b}" if b <= 5 else "test_batch"
        obj = {b"batch_label": b"fake", b"labels": labels, b"data": data, b"filenames": [b"x"] * ROWS}
        # The official files are Python-2 protocol-2 pickles; Python 3 writes bytes in
        # protocol 2 through _codecs.encode, which the loader rightly refuses, so use 4
        # (bytes natively, arrays through numpy's _reconstruct as in the official files).
        (folder / name).write_bytes(pickle.dumps(obj, protocol=4))
    meta = {b"label_names": [n.encode() for n in OFFICIAL_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return folder


def official_targz(out: Path) -> Path:
    src = write_official(out.parent / "_src" / "cifar-10-batches-py")
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return out


def assert_official(arr: CifarArrays):
    assert arr.classes == tuple(OFFICIAL_NAMES)
    assert arr.train.images.shape == (5 * ROWS, 3, 32, 32)
    assert arr.test.images.shape == (ROWS, 3, 32, 32)
    assert arr.train.images.dtype == np.uint8 and arr.train.labels.dtype == np.int64
    # row r of batch b, pixel (c, y, x) is byte c*1024 + y*32 + x of that row
    for b in range(1, 6):
        data, labels = fake_batch(b)
        for r in range(ROWS):
            img = arr.train.images[(b - 1) * ROWS + r]
            assert img[0, 0, 0] == data[r, 0]
            assert img[1, 2, 3] == data[r, 1024 + 2 * 32 + 3]
            assert img[2, 31, 30] == data[r, 2048 + 31 * 32 + 30]
            assert arr.train.labels[(b - 1) * ROWS + r] == labels[r]
    data, labels = fake_batch(6)
    assert list(arr.test.labels) == labels
    assert arr.test.images[2, 1, 0, 5] == data[2, 1024 + 5]
    assert np.array_equal(arr.test.images.reshape(ROWS, 3072), data)


def test_official_folder(tmp_path, cache):
    folder = write_official(tmp_path / "cifar-10-batches-py")
    assert_official(load_cifar10(folder, cache_dir=cache, download=False, progress=False))
    assert_official(load_cifar10(tmp_path, cache_dir=cache, download=False, progress=False))


def test_official_targz(tmp_path, cache):
    (tmp_path / "d").mkdir()
    archive = official_targz(tmp_path / "d" / "cifar-10-python.tar.gz")
    assert_official(load_cifar10(archive, cache_dir=cache, download=False, progress=False))
    assert_official(load_cifar10(tmp_path / "d", cache_dir=cache, download=False, progress=False))


class _Evil:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_restricted_unpickler_refuses_other_globals(tmp_path, cache):
    folder = write_official(tmp_path / "cifar-10-batches-py")
    target = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(target), b"labels": []}, protocol=4))
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar10(folder, cache_dir=cache, download=False, progress=False)
    assert not target.exists()
    with pytest.raises(pickle.UnpicklingError):
        cifar10_decode._RestrictedUnpickler(io.BytesIO(pickle.dumps(os.system)), encoding="bytes").load()


# --------------------------------------------------------------------------- cache behaviour


def test_cache_is_used_and_corrupt_cache_rebuilt(tmp_path, cache, monkeypatch):
    tree = make_tree(tmp_path / "tree")
    load_cifar10(tree, cache_dir=cache, download=False, progress=False)
    (npz,) = (cache / "arrays").glob("cifar10-*.npz")

    def no_decode(*a, **k):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(mod, "_read_image_dir", no_decode)
    assert_synthetic(load_cifar10(tree, cache_dir=cache, download=False, progress=False))
    monkeypatch.undo()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network"))

    npz.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="cache"):
        assert_synthetic(load_cifar10(tree, cache_dir=cache, download=False, progress=False))
    assert np.load(npz)["train_images"].shape == (20, 3, 32, 32)
    assert not [p for p in (cache / "arrays").iterdir() if p.name.endswith(".tmp")]


def test_changed_source_invalidates_cache(tmp_path, cache):
    tree = make_tree(tmp_path / "tree")
    load_cifar10(tree, cache_dir=cache, download=False, progress=False)
    f = tree / "train" / "apple" / "0000.png"
    Image.fromarray(np.full((32, 32, 3), 9, dtype=np.uint8)).save(f)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    arr = load_cifar10(tree, cache_dir=cache, download=False, progress=False)
    assert (arr.train.images[0] == 9).all()
    assert len(list((cache / "arrays").glob("cifar10-*.npz"))) == 2


# --------------------------------------------------------------------------- bad inputs


def test_missing_path_without_download(tmp_path, cache):
    with pytest.raises(DataError, match="TTQ_DATA_DIR"):
        load_cifar10(tmp_path / "nope", cache_dir=cache, download=False)
    assert not (tmp_path / "nope").exists()


def test_missing_archive_file_is_not_a_download_folder(tmp_path, cache):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "typo.tar.gz", cache_dir=cache, download=True)
    assert not (tmp_path / "typo.tar.gz").exists()


def test_empty_folder_without_download(tmp_path, cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_cifar10(tmp_path / "empty", cache_dir=cache, download=False)


def test_junk_folder(tmp_path, cache):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    (tmp_path / "junk" / "sub").mkdir()
    with pytest.raises(DataError, match="expected") as info:
        load_cifar10(tmp_path / "junk", cache_dir=cache, download=True)
    assert "\n" not in str(info.value)
    assert listing(tmp_path / "junk") == ["notes.txt", "sub"]


def test_truncated_targz(tmp_path, cache):
    # Cut at many points: a cut inside a tar member header once ended tarfile's stream
    # iteration silently and the archive was read as if complete (9 of 10 classes).
    archive = make_targz(make_tree(tmp_path / "tree"), tmp_path / "full.tar.gz", "top")
    data = archive.read_bytes()
    cut = tmp_path / "cut" / "cut.tar.gz"
    cut.parent.mkdir()
    for k in range(1, 24):
        cut.write_bytes(data[: len(data) * k // 24])
        with pytest.raises(DataError, match="corrupted or truncated") as info:
            load_cifar10(cut, cache_dir=cache, download=False, progress=False)
        assert "\n" not in str(info.value)
    for tail in (1, 8):  # the gzip trailer (CRC and size) cut off
        cut.write_bytes(data[:-tail])
        with pytest.raises(DataError, match="corrupted or truncated"):
            load_cifar10(cut, cache_dir=cache, download=False, progress=False)


def test_garbage_member_in_targz(tmp_path, cache):
    tree = make_tree(tmp_path / "tree")
    (tree / "train" / "cow" / "0001.png").write_bytes(b"\x89PNG garbage")
    archive = make_targz(tree, tmp_path / "bad.tar.gz", None)
    with pytest.raises(DataError, match=r"train/cow/0001\.png"):
        load_cifar10(archive, cache_dir=cache, download=False, progress=False)


def test_wrong_size_image(tmp_path, cache):
    tree = make_tree(tmp_path / "tree")
    Image.new("RGB", (32, 33)).save(tree / "train" / "dog" / "0001.png")
    with pytest.raises(DataError, match=r"dog.0001\.png.*32x33"):
        load_cifar10(tree, cache_dir=cache, download=False, progress=False)


def test_wrong_number_of_classes(tmp_path, cache):
    tree = make_tree(tmp_path / "tree", classes=SYN_CLASSES[:9])
    with pytest.raises(DataError, match="9 class folders"):
        load_cifar10(tree, cache_dir=cache, download=False, progress=False)


def test_mismatched_class_names(tmp_path, cache):
    tree = make_tree(tmp_path / "tree")
    (tree / "test" / "jay").rename(tree / "test" / "kea")
    with pytest.raises(DataError, match="differ"):
        load_cifar10(tree, cache_dir=cache, download=False, progress=False)


# --------------------------------------------------------------------------- download


def test_download_success(tmp_path, cache, monkeypatch):
    fake = official_targz(tmp_path / "srv" / "cifar-10-python.tar.gz").read_bytes()
    calls = []

    def fetch(url, dest, progress):
        calls.append(url)
        dest.write(fake)

    monkeypatch.setattr(mod, "_fetch_url", fetch)
    monkeypatch.setattr(mod, "CIFAR10_MD5", hashlib.md5(fake).hexdigest())
    target = tmp_path / "dl" / "cifar10"
    assert_official(load_cifar10(target, cache_dir=cache, download=True, progress=False))
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert listing(target) == ["cifar-10-python.tar.gz"]
    # second call reads the downloaded archive, no new fetch
    assert_official(load_cifar10(target, cache_dir=cache, download=True, progress=False))
    assert len(calls) == 1


def test_download_md5_mismatch_leaves_nothing(tmp_path, cache, monkeypatch):
    fake = official_targz(tmp_path / "srv" / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(mod, "_fetch_url", lambda url, dest, progress: dest.write(fake))
    target = tmp_path / "dl"
    target.mkdir()
    with pytest.raises(DataError, match="md5") as info:
        load_cifar10(target, cache_dir=cache, download=True, progress=False)
    assert "c58f30108f718f92721af3b95e74349a" in str(info.value)
    assert listing(target) == []


def test_download_network_failure(tmp_path, cache, monkeypatch):
    def fetch(url, dest, progress):
        dest.write(b"partial")
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(mod, "_fetch_url", fetch)
    target = tmp_path / "dl"
    with pytest.raises(DataError, match="cifar-10-python.tar.gz") as info:
        load_cifar10(target, cache_dir=cache, download=True, progress=False)
    msg = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/" in msg and "TTQ_DATA_DIR" in msg and "--data-dir" in msg
    assert listing(target) == []


# --------------------------------------------------------------------------- subset and defaults


def test_balanced_subset_hand_checked():
    labels = np.array([2, 0, 0, 1, 2, 0, 1, 2, 2])
    # class 0 at 1,2,5; class 1 at 3,6; class 2 at 0,4,7,8
    # round 0 takes 1,3,0; round 1 takes 2,6,4; round 2 takes 5,7; round 3 takes 8
    assert balanced_subset(labels, 1).tolist() == [1]
    assert balanced_subset(labels, 3).tolist() == [0, 1, 3]
    assert balanced_subset(labels, 4).tolist() == [0, 1, 2, 3]
    assert balanced_subset(labels, 7).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert balanced_subset(labels, 8).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert balanced_subset(labels, 9).tolist() == list(range(9))
    assert balanced_subset(labels, 100).tolist() == list(range(9))
    for bad in (0, -3):
        with pytest.raises(DataError):
            balanced_subset(labels, bad)


def test_balanced_subset_on_real_labels(real):
    idx = balanced_subset(real.test.labels, 100)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    assert np.bincount(real.test.labels[idx], minlength=10).tolist() == [10] * 10


def test_default_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("TTQ_DATA_DIR", raising=False)
    monkeypatch.delenv("TTQ_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "ttq" / "data" / "cifar10"
    assert default_cache_dir() == tmp_path / "xdg" / "ttq"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "ttq" / "data" / "cifar10"
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ttq"
    monkeypatch.setenv("TTQ_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TTQ_CACHE_DIR", str(tmp_path / "c"))
    assert default_data_dir() == tmp_path / "d"
    assert default_cache_dir() == tmp_path / "c"


def test_data_dir_none_uses_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TTQ_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing"):
        load_cifar10(None, cache_dir=tmp_path / "c", download=False)
