"""Random crops of whole images at train time (issue 22, point 4): a fully convolutional model
on a folder of photos larger than its patch (or of several sizes) sees new crops each epoch,
seeded so that a resumed run sees the same ones, and holds whole images out for validation.

The images are synthetic (smooth random fields written as PNG), so these run without
scikit-image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from aekit.cli import main
from aekit.data import load_dataset
from aekit.data.crops import RandomCrops, image_split, run_split, training_crops
from aekit.errors import DataError


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = np.cumsum(np.cumsum(rng.normal(size=(h, w)), 0), 1)
    field -= field.min()
    return (255 * field / max(field.max(), 1e-9)).astype(np.uint8)


def _folder(root: Path, sizes) -> Path:
    root.mkdir()
    for k, (h, w) in enumerate(sizes):
        Image.fromarray(_photo(h, w, k)).save(root / f"p{k}.png")
    return root


def test_image_split_holds_whole_images_out_by_seed():
    names = [f"a.png#{y},0" for y in range(0, 60, 20)] + ["b.png#0,0"] + ["c.png#0,0", "c.png#0,9"]
    train, val = image_split(names, 0.34, seed=3)  # round(3 * 0.34) = 1 image held out
    files = [n.split("#")[0] for n in names]
    held = {files[i] for i in val}
    assert len(held) == 1 and not held & {files[i] for i in train}
    assert sorted([*train, *val]) == list(range(len(names)))
    again, val2 = image_split(names, 0.34, seed=3)
    assert list(again) == list(train) and list(val2) == list(val)
    picks = {files[image_split(names, 0.34, seed=s)[1][0]] for s in range(20)}
    assert picks == {"a.png", "b.png", "c.png"}  # the seed chooses among the images
    rows, none = image_split(names, 0, seed=0)
    assert none is None and list(rows) == list(range(len(names)))
    with pytest.raises(DataError, match="leaves none to train on"):
        image_split(["a.png#0,0", "a.png#0,8"], 0.1, seed=0)


def test_crops_are_slices_of_their_images_at_seeded_positions():
    rng = np.random.default_rng(0)
    images = [rng.random((2, 9, 13), dtype=np.float32), rng.random((2, 30, 6), dtype=np.float32)]
    crops = RandomCrops(images, 5, n=400, transform=lambda r: 2 * r)
    pos = crops.positions(seed=1, epoch=0)
    rows = crops.epoch_rows(seed=1, epoch=0)
    assert rows.shape == (400, 2 * 5 * 5) and rows.dtype == np.float32
    for (k, y, x), row in zip(pos[:50], rows[:50], strict=True):
        np.testing.assert_array_equal(row, 2 * images[k][:, y : y + 5, x : x + 5].reshape(-1))
    assert (pos[:, 1] + 5 <= np.array([9, 30])[pos[:, 0]]).all()
    assert (pos[:, 2] + 5 <= np.array([13, 6])[pos[:, 0]]).all()
    np.testing.assert_array_equal(rows, crops.epoch_rows(seed=1, epoch=0))  # a pure function
    assert not np.array_equal(pos, crops.positions(seed=1, epoch=1))  # new crops each epoch
    assert not np.array_equal(pos, crops.positions(seed=2, epoch=0))
    # each image in proportion to its crop positions: 5 x 9 = 45 and 26 x 2 = 52
    many = RandomCrops(images, 5, n=20000).positions(seed=0, epoch=0)
    assert abs((many[:, 0] == 0).mean() - 45 / 97) < 0.02
    with pytest.raises(DataError, match="do not fit the smallest image"):
        RandomCrops(images, 7, n=1)


def test_a_run_on_a_mixed_folder_trains_on_crops_and_holds_whole_images_out(tmp_path, capsys):
    folder = _folder(tmp_path / "photos", [(40, 50), (24, 60), (33, 33), (48, 24), (30, 45)])
    ds = load_dataset(folder, patch=24)
    assert len(ds.sources) == 5 and ds.sources["p1.png"].shape == (1, 24, 60)
    train, val = run_split(ds, 0.2, seed=0, crops=True)
    sampler = training_crops(ds, train)
    assert len(sampler) == len(train) and len(sampler.images) == 4  # one image held out
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--model", "dncnn", "--epochs", "2", "--quiet",
            "--val-fraction", "0.2", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    assert "random 24x24 crops" in capsys.readouterr().err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["patch"] == 24 and cfg["data"]["crops"] is True
    assert cfg["data"]["n_val"] == len(val) and cfg["data"]["n_train"] == len(train)
    assert main(["eval", str(run), "--json"]) == 0  # its held-out images' tiles, found again
    # the crops are a function of (seed, epoch): 1 epoch then a resume to 2 = 2 epochs at once
    part = tmp_path / "part"
    part_args = [*args[:-1], str(part)]
    part_args[part_args.index("--epochs") + 1] = "1"
    assert main(part_args) == 0
    assert main(["train", "--resume", "--epochs", "2", "--out", str(part), "--quiet"]) == 0
    wa, wb = load_file(run / "checkpoint.safetensors"), load_file(part / "checkpoint.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_loop_trains_on_new_crops_each_epoch(tmp_path, monkeypatch):
    """Not the grid tiles: the rows the steps see are the sampler's, epoch by epoch."""
    folder = _folder(tmp_path / "photos", [(40, 50), (24, 60), (33, 33)])
    seen = []
    original = RandomCrops.epoch_rows

    def spy(self, seed, epoch):
        rows = original(self, seed, epoch)
        seen.append((epoch, rows.copy()))
        return rows

    monkeypatch.setattr(RandomCrops, "epoch_rows", spy)
    args = ["train", "--data", str(folder), "--model", "dncnn", "--epochs", "2", "--quiet",
            "--val-fraction", "0", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    assert [e for e, _ in seen] == [0, 1] and not np.array_equal(seen[0][1], seen[1][1])
    grid = load_dataset(folder, patch=24).X / 255
    on_grid = [any(np.allclose(r, g) for g in grid) for r in seen[0][1]]
    assert not all(on_grid)  # crops anywhere, not only the tiles' grid


def _last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("aekit: error:")
    return err[-1]


def test_patch_crops_images_of_one_size_and_is_refused_where_it_cannot_apply(tmp_path, capsys):
    folder = _folder(tmp_path / "photos", [(48, 48)] * 4)
    run = tmp_path / "run"
    base = ["train", "--data", str(folder), "--epochs", "1", "--quiet"]
    assert main([*base, "--model", "dncnn", "--patch", "16", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["image_shape"] == [1, 16, 16] and cfg["data"]["crops"] is True
    assert cfg["data"]["n_train"] == 3 * 9  # 3 training images of 3 x 3 tiles each
    assert main(["train", "--resume", "--out", str(run), "--patch", "16", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--patch", "8", "--quiet"]) == 2
    assert "patch (the run has 16, not 8)" in _last_error(capsys)
    refusals = [
        (["--model", "dense", "--patch", "16"], "fully convolutional"),
        (["--model", "dncnn", "--patch", "16", "--resize", "32x32"], "drop --resize"),
        (["--model", "dncnn", "--patch", "0"], "whole number >= 1"),
        (["--model", "dncnn", "--patch", "64"], "do not fit the smallest image"),
    ]
    for k, (extra, message) in enumerate(refusals):
        assert main([*base, *extra, "--out", str(tmp_path / f"no{k}")]) == 2, extra
        assert message in _last_error(capsys)
        assert not (tmp_path / f"no{k}" / "config.json").exists()
    table = tmp_path / "rows.npy"
    np.save(table, np.zeros((20, 4), np.float32))
    args = ["train", "--data", str(table), "--model", "dncnn", "--patch", "4", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "t")]) == 2
    assert "crops image files" in _last_error(capsys)
