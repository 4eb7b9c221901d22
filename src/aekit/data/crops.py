"""Random crops of whole images, drawn afresh each epoch: how a fully convolutional model trains
on a folder of photographs larger than its training patch (or of several sizes).

The run's rows stay the grid tiles :func:`aekit.data.images.read_patches` cuts (the scaler, the
PCA start, the held-out check and the report read those); the training loop draws its epoch's
rows from :class:`RandomCrops` instead: as many crops as the training images hold tiles, each
at a position that is a pure function of (seed, epoch), so a resumed run sees the same crops.
The validation part is whole images (:func:`image_split`): a tile of an image whose other
crops are trained on would tell early stopping nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from aekit.errors import DataError

from .scaling import _check_fraction, train_val_split


def tile_files(names: Sequence[str]) -> list[str]:
    """The file each tile was cut from (names ``<file>#<row>,<column>``)."""
    return [n.rsplit("#", 1)[0] for n in names]


def image_split(names: Sequence[str], val_fraction: float, seed: int):
    """(train row indices, validation row indices or None) keeping each image's tiles together:
    ``max(1, round(n_images * val_fraction))`` whole images chosen by ``seed`` are held out.

    Raises
    ------
    DataError
        ``val_fraction`` outside [0, 1), or a validation part that would leave no image to
        train on.
    """
    frac = _check_fraction(val_fraction)
    files = tile_files(names)
    order = list(dict.fromkeys(files))  # the images, in file order
    rows = np.arange(len(files))
    if frac == 0:
        return rows, None
    n_val = max(1, round(len(order) * frac))
    if len(order) - n_val < 1:
        raise DataError(
            f"val_fraction={val_fraction} of {len(order)} image(s) leaves none to train on: "
            "the validation part of a run on crops is whole images; use more images or "
            "--val-fraction 0"
        )
    held = {order[i] for i in np.random.default_rng(seed).permutation(len(order))[:n_val]}
    is_val = np.array([f in held for f in files])
    return rows[~is_val], rows[is_val]


class RandomCrops:
    """``n`` crops of ``size`` x ``size`` from ``images`` per epoch, as rows (n, C*size*size).

    An image is picked with probability proportional to its count of crop positions, the
    position uniformly among them; ``transform`` (the run's scaler) applies to the rows. The
    loop's strategies ask for :meth:`epoch_rows` in place of a permutation of fixed rows.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        size: int,
        n: int,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if not images or n < 1:
            raise DataError("random crops need at least one image and one crop per epoch")
        small = min(min(a.shape[1:]) for a in images)
        if size > small:
            raise DataError(
                f"crops of {size}x{size} do not fit the smallest image ({small} pixels on a "
                f"side); use a patch of at most {small}"
            )
        self.images, self.size, self.n = list(images), int(size), int(n)
        self.transform = transform
        self.channels = images[0].shape[0]
        places = np.array(
            [(a.shape[1] - size + 1) * (a.shape[2] - size + 1) for a in images], np.float64
        )
        self.weights = places / places.sum()

    def __len__(self) -> int:
        return self.n

    @property
    def width(self) -> int:
        return self.channels * self.size * self.size

    def positions(self, seed: int, epoch: int) -> np.ndarray:
        """(n, 3) int: image index, top row, left column of each crop of the epoch."""
        rng = np.random.default_rng([int(seed), int(epoch), 13])
        which = rng.choice(len(self.images), size=self.n, p=self.weights)
        out = np.empty((self.n, 3), np.int64)
        out[:, 0] = which
        for k, a in enumerate(self.images):
            mine = which == k
            m = int(mine.sum())
            out[mine, 1] = rng.integers(0, a.shape[1] - self.size + 1, m)
            out[mine, 2] = rng.integers(0, a.shape[2] - self.size + 1, m)
        return out

    def epoch_rows(self, seed: int, epoch: int) -> np.ndarray:
        """The epoch's crops, float32 (n, C*size*size), in a random order, transformed."""
        s = self.size
        rows = np.empty((self.n, self.width), np.float32)
        for r, (k, y, x) in enumerate(self.positions(seed, epoch)):
            rows[r] = self.images[k][:, y : y + s, x : x + s].reshape(-1)
        return rows if self.transform is None else self.transform(rows).astype(np.float32)


def run_split(ds, val_fraction: float, seed: int, crops: bool = False):
    """(train row indices, validation row indices or None) of a run's data: whole images for a
    run on random crops, else :func:`aekit.data.scaling.train_val_split`'s seeded rows."""
    if crops:
        return image_split(ds.files, val_fraction, seed)
    return train_val_split(np.arange(ds.n_samples), val_fraction, seed)


def training_crops(ds, train_rows: np.ndarray, transform=None) -> RandomCrops:
    """The :class:`RandomCrops` of a run on patches: the whole images its training rows were
    cut from, as many crops per epoch as those rows, of the patch's size."""
    if ds.sources is None or ds.files is None or ds.image_shape is None:
        raise DataError("random crops need image files read as patches")
    images = whole_images(ds, train_rows)
    return RandomCrops(images, ds.image_shape[1], len(train_rows), transform)


def whole_images(ds, rows=None) -> list[np.ndarray]:
    """The whole images (C, H, W), raw units, that tiles ``rows`` (default: all) were cut
    from, each once, in file order."""
    files = tile_files(ds.files)
    picked = files if rows is None else [files[i] for i in rows]
    return [ds.sources[f] for f in dict.fromkeys(picked)]
