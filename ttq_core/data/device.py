"""Device-resident batches with on-device augmentation (airbench style).

The whole split sits on the training device as uint8 NCHW; a batch is a slice of a
``randperm``; random crop (zero padding of 4 pixels, as torchvision's
``RandomCrop(32, padding=4)`` on raw pixels) and horizontal flip are batched index and
mask operations on the device; normalisation ``(x/255 - mean) / std`` happens last, in
float32.  All randomness comes from a ``torch.Generator`` the caller seeds, so an epoch's
batches depend only on that seed (which makes ``--resume`` exact).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

CROP_PADDING = 4  # pixels of zero padding before the random 32x32 crop


class BatchSource:
    """What DeviceData and the ImageNet LoaderData share: a device, per-channel ``mean``/
    ``std`` of [0, 1] pixel values, ``labels``, batch counting and normalisation.
    Subclasses set ``labels`` and implement ``batches``."""

    labels: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 device: str | torch.device = "cpu", channels_last: bool = False):
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.channels_last = channels_last

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def num_batches(self, batch_size: int, drop_last: bool = False,
                    shard: tuple[int, int] = (0, 1)) -> int:
        n = shard_length(len(self), shard, drop_last)
        return n // batch_size if drop_last else -(-n // batch_size)

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = (x_uint8.float().div_(255.0) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class DeviceData(BatchSource):
    """One split (images uint8 (N,3,H,W), labels int64 (N,)) held on ``device``.

    ``mean``/``std`` are per-channel statistics of [0, 1] pixel values.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                 mean: Sequence[float], std: Sequence[float], device: str | torch.device = "cpu",
                 channels_last: bool = False):
        super().__init__(mean, std, device, channels_last)
        self.images = torch.as_tensor(images, dtype=torch.uint8).to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        if self.images.ndim != 4 or self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"images {tuple(self.images.shape)} and labels "
                             f"{tuple(self.labels.shape)} do not match")

    def batches(self, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None,
                drop_last: bool = False, shard: tuple[int, int] = (0, 1),
                batch_range: tuple[int, int] | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs float32 normalised, targets int64)`` on the device.

        ``shard=(rank, world)``: this rank's part of the images (see :func:`shard_order`);
        ``(0, 1)`` is all of them, in exactly the order and with exactly the augmentation
        of an unsharded call.  ``batch_range=(lo, hi)``: only batches lo..hi-1 of the
        sequence (the same tensors an unrestricted call yields at those positions; how
        evaluation and analysis split the data over ranks, see :func:`batch_block`)."""
        rank, world = shard
        order = shard_order(len(self), shard, shuffle=shuffle, drop_last=drop_last,
                            generator=generator, device=self.device)
        if augment and world > 1 and generator is not None:
            # the permutation came from the shared generator (same on every rank); each
            # rank's crops and flips come from its own generator, seeded from it
            seed = int(torch.randint(2 ** 62, (1,), device=self.device, generator=generator))
            generator = torch.Generator(device=self.device)
            generator.manual_seed(seed + rank)
        n = order.shape[0]
        stop = n - n % batch_size if drop_last else n
        first = 0
        if batch_range is not None:
            first, stop = batch_range[0] * batch_size, min(stop, batch_range[1] * batch_size)
        for start in range(first, stop, batch_size):
            idx = order[start:start + batch_size]
            x = self.images[idx]
            if augment:
                x = random_crop_flip(x, generator)
            yield self.normalize(x), self.labels[idx]


def batch_block(num_batches: int, shard: tuple[int, int]) -> tuple[int, int]:
    """``(lo, hi)``: the contiguous block of batch positions rank ``shard[0]`` of
    ``shard[1]`` evaluates out of ``num_batches`` (blocks differ by at most one batch).
    Every rank computes exactly the batches a single process computes at those
    positions, and the blocks in rank order are the whole sequence, in order."""
    rank, world = shard
    return num_batches * rank // world, num_batches * (rank + 1) // world


def shard_length(n: int, shard: tuple[int, int], drop_last: bool) -> int:
    """Items rank ``shard[0]`` of ``shard[1]`` gets out of ``n`` (see :func:`shard_order`)."""
    rank, world = shard
    if world == 1:
        return n
    if drop_last:
        return n // world
    base, extra = divmod(n, world)
    return base + (1 if rank < extra else 0)


def shard_order(n: int, shard: tuple[int, int] = (0, 1), *, shuffle: bool = False,
                drop_last: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """The indices rank ``shard[0]`` of ``shard[1]`` ranks visits, in order.

    Training (``shuffle=True, drop_last=True``): every rank draws the same seeded
    permutation and takes positions ``rank::world`` of its first ``world·(n // world)``
    entries, so the shards are disjoint, equally long (as ``DistributedSampler`` with
    ``drop_last=True``), and one step over all ranks sees ``world × batch`` images.
    Evaluation (``shuffle=False, drop_last=False``): contiguous blocks in index order
    (the first ``n % world`` ranks one image more), so concatenating the ranks' parts in
    rank order gives every image exactly once, in order.
    """
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard rank {rank} is outside 0..{world - 1}")
    if shuffle:
        order = torch.randperm(n, device=device, generator=generator)
    else:
        order = torch.arange(n, device=device)
    if world == 1:
        return order
    if shuffle or drop_last:
        usable = n - n % world
        return order[rank:usable:world]
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return order[start:start + base + (1 if rank < extra else 0)]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None,
                     padding: int = CROP_PADDING) -> torch.Tensor:
    """Per-image random crop after zero padding, then a random horizontal flip (p = 0.5).

    ``x``: (B, C, H, W), any dtype; the result has the same shape.  One gather and one
    ``where`` for the whole batch, no Python loop over images.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]            # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]            # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)                     # flip = reversed columns
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
