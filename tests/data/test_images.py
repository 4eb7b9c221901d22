"""Image files as data (issue 21): folders, single files and path lists of real photos.

The photos are crops of scikit-image's bundled pictures (camera, astronaut, coffee, chelsea),
written to PNG / JPEG files in a temporary folder: what a user's folder of photos looks like.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.cli import main
from aekit.data import load_dataset
from aekit.data.images import parse_resize
from aekit.errors import DataError

skdata = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos")

SIZE = 20
QUICK = ["--epochs", "2", "--latent-dim", "4", "--quiet"]


def _crops(image: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        y, x = rng.integers(0, h - SIZE), rng.integers(0, w - SIZE)
        out.append(np.ascontiguousarray(image[y : y + SIZE, x : x + SIZE]))
    return out


def _write(folder: Path, images, prefix: str, suffix: str = ".png") -> list[str]:
    names = []
    for i, img in enumerate(images):
        name = f"{prefix}{i:02d}{suffix}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / name, quality=95)
        names.append(name)
    return names


@pytest.fixture(scope="module")
def grey(tmp_path_factory) -> Path:
    """40 grey crops of 'camera': PNGs at the top, PNGs and JPEGs in a subfolder."""
    folder = tmp_path_factory.mktemp("grey") / "photos"
    crops = _crops(skdata.camera(), 40, 0)
    _write(folder, crops[:25], "a")
    _write(folder, crops[25:35], "sub/b")
    _write(folder, crops[35:], "sub/c", ".jpg")
    (folder / "notes.csv").write_text("not,an,image\n")  # other files are ignored
    (folder / ".hidden.png").write_bytes(b"junk")  # hidden names are skipped
    return folder


@pytest.fixture(scope="module")
def grey_run(grey, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--data", str(grey), "--out", str(out), *QUICK]) == 0
    return out


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aekit: error:"), err
    return lines[0]


# ------------------------------------------------------------------ reading


def test_a_folder_is_read_recursively_in_sorted_order_with_its_names(grey):
    ds = load_dataset(grey)
    names = sorted(
        p.relative_to(grey).as_posix()
        for p in grey.rglob("*")
        if p.suffix in (".png", ".jpg") and not p.name.startswith(".")
    )
    assert list(ds.files) == names and len(names) == 40
    assert ds.X.shape == (40, SIZE * SIZE) and ds.X.dtype == np.float32
    assert ds.image_shape == (1, SIZE, SIZE) and ds.max_value == 255.0 and ds.dtype == "uint8"
    for i in (0, 30, 39):  # each row is its file's pixels, as Pillow decodes them
        pixels = np.asarray(Image.open(grey / names[i]).convert("L"), np.float32)
        np.testing.assert_array_equal(ds.X[i].reshape(SIZE, SIZE), pixels)
    assert ds.name == "photos"


def test_a_single_file_and_a_path_list_give_the_same_rows(grey, tmp_path):
    whole = load_dataset(grey)
    one = load_dataset(grey / "sub" / "c00.jpg")
    assert one.files == ("c00.jpg",)
    np.testing.assert_array_equal(one.X[0], whole.X[whole.files.index("sub/c00.jpg")])
    listing = tmp_path / "list.txt"
    rel = os.path.relpath(grey, tmp_path)
    listing.write_text(f"# two images\n{rel}/a03.png\n\n{grey}/sub/b01.png\n")
    listed = load_dataset(listing)
    assert listed.files == ("a03.png", "sub/b01.png")  # relative to their common folder
    np.testing.assert_array_equal(listed.X[0], whole.X[whole.files.index("a03.png")])
    np.testing.assert_array_equal(listed.X[1], whole.X[whole.files.index("sub/b01.png")])
    assert load_dataset(grey, limit=3).files == whole.files[:3]


def test_rgb_images_are_channels_first_and_modes_convert_as_documented(tmp_path):
    crops = _crops(skdata.astronaut(), 3, 1)
    _write(tmp_path, crops, "rgb")
    ds = load_dataset(tmp_path)
    assert ds.image_shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(ds.X[0].reshape(3, SIZE, SIZE).transpose(1, 2, 0), crops[0])
    # --color gray: ITU-R 601 luma, as Pillow's convert("L")
    g = load_dataset(tmp_path, color="gray")
    want = np.asarray(Image.fromarray(crops[1]).convert("L"), np.float32)
    np.testing.assert_array_equal(g.X[1].reshape(SIZE, SIZE), want)
    # palette, RGBA (alpha dropped) and CMYK are read as RGB
    Image.fromarray(crops[0]).convert("P").save(tmp_path / "x_palette.png")
    Image.fromarray(np.dstack([crops[0], np.full((SIZE, SIZE), 7, np.uint8)])).save(
        tmp_path / "x_rgba.png"
    )
    Image.fromarray(crops[2]).convert("CMYK").save(tmp_path / "x_cmyk.jpg")
    ds = load_dataset(tmp_path)
    assert ds.image_shape == (3, SIZE, SIZE) and len(ds.files) == 6
    rgba = ds.X[ds.files.index("x_rgba.png")].reshape(3, SIZE, SIZE).transpose(1, 2, 0)
    np.testing.assert_array_equal(rgba, crops[0])
    palette = Image.open(tmp_path / "x_palette.png").convert("RGB")
    got = ds.X[ds.files.index("x_palette.png")].reshape(3, SIZE, SIZE).transpose(1, 2, 0)
    np.testing.assert_array_equal(got, np.asarray(palette))


def test_16_bit_grey_keeps_its_values_and_its_maximum(tmp_path):
    img = (np.arange(SIZE * SIZE, dtype=np.uint32).reshape(SIZE, SIZE) * 157).astype(np.uint16)
    Image.fromarray(img).save(tmp_path / "deep.png")
    ds = load_dataset(tmp_path)
    assert ds.max_value == 65535.0 and ds.dtype == "uint16"
    np.testing.assert_array_equal(ds.X[0].reshape(SIZE, SIZE), img.astype(np.float32))


def test_exif_orientation_turns_photos_upright(tmp_path):
    img = _crops(skdata.coffee(), 1, 2)[0][:, :12]  # 20 x 12, wider than tall once turned
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(img).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    ds = load_dataset(tmp_path)
    assert ds.image_shape == (3, 12, SIZE)


def test_mixed_sizes_are_refused_naming_them_unless_resized(tmp_path):
    crops = _crops(skdata.camera(), 3, 3)
    _write(tmp_path, crops, "a")
    Image.fromarray(skdata.camera()[:30, :25]).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"2 sizes \(HxW\): 20x20 \(3 files\), 30x25 \(1 file\)"):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, resize=(16, 12))
    assert ds.image_shape == (1, 16, 12)
    want = Image.open(tmp_path / "big.png").resize((12, 16), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(ds.X[-1].reshape(16, 12), np.asarray(want, np.float32))
    assert parse_resize("64x48") == (64, 48) and parse_resize("32") == (32, 32)
    with pytest.raises(DataError, match="HxW"):
        parse_resize("big")


def test_mixed_modes_and_depths_are_refused_in_one_line(tmp_path):
    _write(tmp_path, _crops(skdata.camera(), 2, 4), "g")
    _write(tmp_path, _crops(skdata.chelsea(), 1, 4), "c")
    with pytest.raises(DataError, match=r"mixes grayscale \(2 files.*RGB images \(1.*--color"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, color="rgb").image_shape == (3, SIZE, SIZE)
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match="mixes bit depths"):
        load_dataset(tmp_path, color="gray")


# ------------------------------------------------------------------ the commands


def test_train_records_how_images_were_read_and_their_units(grey_run, grey):
    cfg = json.loads((grey_run / "config.json").read_text())
    assert cfg["data"]["source"] == str(grey.resolve())
    assert cfg["data"]["color"] == "auto" and cfg["data"]["resize"] is None
    assert cfg["data"]["image_shape"] == [1, SIZE, SIZE]
    assert cfg["units"]["dtype"] == "uint8" and cfg["units"]["max_value"] == 255.0
    assert cfg["units"]["image"] is True and cfg["scaler"]["kind"] == "image"


def test_outputs_keep_the_inputs_names(grey_run, grey, tmp_path, capsys):
    names = list(load_dataset(grey).files)
    assert (
        main(["encode", str(grey_run), "--data", str(grey), "--out", str(tmp_path / "z.csv")]) == 0
    )
    with open(tmp_path / "z.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "z0", "z1", "z2", "z3"]
    assert [r[0] for r in rows[1:]] == names
    codes = aekit.load(grey_run).encode_numpy(load_dataset(grey).X)
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], float), codes, rtol=1e-6)
    out = tmp_path / "rec"
    assert main(["reconstruct", str(grey_run), "--data", str(grey), "--out", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == sorted(str(Path(n).with_suffix(".png")) for n in names)
    x_hat = aekit.load(grey_run).reconstruct_numpy(load_dataset(grey).X)
    back = np.asarray(Image.open(out / "sub" / "c01.png"), np.float32)
    i = names.index("sub/c01.jpg")
    np.testing.assert_array_equal(back, np.clip(np.rint(x_hat[i]), 0, 255).reshape(SIZE, SIZE))
    assert not list(tmp_path.glob(".rec.tmp-*"))  # the folder appeared whole, nothing beside it


def test_score_and_detect_csvs_get_a_file_column(grey, tmp_path):
    det = tmp_path / "det"
    assert main(["fit-detector", "--data", str(grey), "--out", str(det), "--epochs", "2"]) == 0
    for command in ("score", "detect"):
        out = tmp_path / f"{command}.csv"
        assert main([command, str(det), "--data", str(grey), "--out", str(out)]) == 0
        with open(out) as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "file" and [r[0] for r in rows[1:]] == list(load_dataset(grey).files)


def test_compress_and_decompress_into_a_folder_keep_the_names(grey, tmp_path):
    run = tmp_path / "codec"
    assert (
        main(["train", "--data", str(grey), "--model", "compress", "--out", str(run), *QUICK]) == 0
    )
    aek = tmp_path / "photos.aek"
    assert main(["compress", str(run), "--data", str(grey), "--out", str(aek), "--step", "1"]) == 0
    out = tmp_path / "back"
    assert main(["decompress", str(run), str(aek), "--out", str(out)]) == 0
    ds = load_dataset(grey)
    for name in ("a00.png", "sub/b03.png", "sub/c02.jpg"):  # lossless at step 1
        back = np.asarray(Image.open(out / Path(name).with_suffix(".png")), np.float32)
        np.testing.assert_array_equal(back.reshape(-1), ds.X[ds.files.index(name)])


def test_streamed_images_give_the_codes_of_images_loaded_whole(grey_run, grey, tmp_path):
    whole, streamed = tmp_path / "whole.npy", tmp_path / "streamed.npy"
    assert main(["encode", str(grey_run), "--data", str(grey), "--out", str(whole)]) == 0
    argv = ["encode", str(grey_run), "--data", str(grey), "--out", str(streamed), "--stream"]
    assert main(argv) == 0
    np.testing.assert_allclose(np.load(streamed), np.load(whole), rtol=1e-5, atol=1e-5)
    run = tmp_path / "streamed-run"
    assert main(["train", "--data", str(grey), "--stream", "--out", str(run), *QUICK]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["stream"] and cfg["data"]["image_shape"] == [1, SIZE, SIZE]
    assert cfg["scaler"]["kind"] == "image" and cfg["units"]["max_value"] == 255.0


def test_a_model_reads_new_images_as_its_run_did(grey, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", str(grey), "--resize", "12x12", "--out", str(run), *QUICK]
    assert main(argv) == 0
    other = tmp_path / "other"
    _write(other, _crops(skdata.camera(), 2, 9), "o")  # 20 x 20: resized to 12 x 12 as in training
    assert main(["encode", str(run), "--data", str(other), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (2, 4)
    argv = ["encode", str(run), "--data", str(other), "--resize", "10x10", "--out", "z2.npy"]
    assert main(argv) == 2
    assert "--resize 12x12" in _one_error(capsys)


# ------------------------------------------------------------------ units


def test_images_in_other_units_are_refused_with_what_to_do(grey_run, grey, tmp_path, capsys):
    ds = load_dataset(grey)
    model = aekit.load(grey_run)
    floats = (ds.X / 255).astype(np.float32)  # PyTorch's habit: the same images in [0, 1]
    with pytest.raises(DataError, match=r"trained on values 0-255 \(uint8\).*lie in \[0, 1\]"):
        model.encode_numpy(floats)
    np.testing.assert_allclose(
        model.encode_numpy(floats, units="convert"), model.encode_numpy(ds.X), rtol=1e-5, atol=1e-4
    )
    model.encode_numpy(floats, units="as-is")  # asked for: no check
    np.save(tmp_path / "floats.npy", floats.reshape(-1, 1, SIZE, SIZE))
    out = tmp_path / "x.npy"
    assert (
        main(
            [
                "reconstruct",
                str(grey_run),
                "--data",
                str(tmp_path / "floats.npy"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    line = _one_error(capsys)
    assert "multiply them by 255" in line and "--units convert" in line and not out.exists()
    assert (
        main(["eval", str(grey_run), "--data", str(tmp_path / "floats.npy"), "--units", "convert"])
        == 0
    )
    deep = tmp_path / "deep"
    deep.mkdir()
    Image.fromarray(np.full((SIZE, SIZE), 40000, np.uint16)).save(deep / "d.png")
    assert (
        main(["encode", str(grey_run), "--data", str(deep), "--out", str(tmp_path / "z.npy")]) == 2
    )
    assert "values 0-65535" in _one_error(capsys)


def test_table_columns_far_outside_their_training_range_warn(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "train.npy", X)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "train.npy"), "--out", str(run), *QUICK]) == 0
    model = aekit.load(run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.encode_numpy(X[:50])  # the same units: silent
    shifted = X[:50].copy()
    shifted[:, 3] *= 1000  # e.g. metres given where the model saw kilometres
    with pytest.warns(UserWarning, match=r"1 column\(s\) lie far outside.*columns 3"):
        model.encode_numpy(shifted)
    capsys.readouterr()
    np.save(tmp_path / "shifted.npy", shifted)
    assert (
        main(
            [
                "encode",
                str(run),
                "--data",
                str(tmp_path / "shifted.npy"),
                "--out",
                str(tmp_path / "z.npy"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert err.count("aekit: warning:") == 1 and "columns 3" in err


# ------------------------------------------------------------------ bad input


def _bad_folder(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    good = _crops(skdata.camera(), 2, 5)
    if kind == "truncated":
        _write(folder, good, "g")
        (folder / "t.png").write_bytes((folder / "g00.png").read_bytes()[:200])
    elif kind == "unreadable":
        _write(folder, good, "g")
        (folder / "u.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    elif kind == "empty":
        (folder / "readme.txt.bak").write_text("no images here")
    elif kind == "sizes":
        _write(folder, good, "g")
        Image.fromarray(skdata.camera()[:31, :17]).save(folder / "odd.png")
    elif kind == "modes":
        _write(folder, good, "g")
        _write(folder, _crops(skdata.astronaut(), 1, 5), "rgb")
    elif kind == "list":
        _write(folder, good, "g")
        (folder / "list.txt").write_text("g00.png\nmissing.png\n")
        return folder / "list.txt"
    return folder


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "truncated or corrupt"),
        ("unreadable", "not an image Pillow can read"),
        ("empty", "is a folder with no images"),
        ("sizes", r"2 sizes \(HxW\): 20x20 \(2 files\), 31x17 \(1 file\).*--resize"),
        ("modes", "mixes grayscale"),
        ("list", "list.txt line 2 names 'missing.png', which is not a file"),
    ],
)
def test_bad_image_input_is_one_line_exit_2_and_nothing_written(kind, message, tmp_path, capsys):
    import re

    source = _bad_folder(tmp_path, kind)
    out = tmp_path / "out"
    assert main(["train", "--data", str(source), "--out", str(out), *QUICK]) == 2
    assert re.search(message, _one_error(capsys))
    assert not out.exists()


def test_output_folders_replace_only_an_earlier_output_of_their_kind(grey_run, grey, tmp_path):
    from aekit.errors import ConfigError
    from aekit.io.images import write_image_folder

    out = tmp_path / "rec"
    argv = ["reconstruct", str(grey_run), "--data", str(grey), "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0  # a rerun replaces its own earlier output
    assert len(list(out.rglob("*.png"))) == 40
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="holding other files"):
        write_image_folder(mine, np.zeros((1, 4)), (1, 2, 2), 255.0)
    assert (mine / "thesis.tex").read_text() == "years of work"
    from aekit.sklearn import AutoencoderOutlierDetector as det

    fitted = det(n_estimators=1, max_iter=1, random_state=0, device="cpu").fit(np.eye(6))
    fitted.save(tmp_path / "det")
    fitted.save(tmp_path / "det")  # an earlier detector is replaced whole
    kept = ["config.json", "knn-reference.safetensors", "member-0"]  # rows: a neighbour part
    assert sorted(p.name for p in (tmp_path / "det").iterdir()) == kept
    with pytest.raises(ConfigError, match="holding other files"):
        fitted.save(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_images_of_any_size_are_read_each_at_its_own_size_for_fully_convolutional_models(
    tmp_path,
):
    from aekit.data.images import read_image_list

    _write(tmp_path, _crops(skdata.camera(), 2, 6), "a")
    big = skdata.camera()[:31, :17]
    Image.fromarray(big).save(tmp_path / "big.png")
    arrays, names, dtype, top = read_image_list(tmp_path)
    assert names == ("a00.png", "a01.png", "big.png") and dtype == "uint8" and top == 255.0
    assert [a.shape for a in arrays] == [(1, SIZE, SIZE), (1, SIZE, SIZE), (1, 31, 17)]
    np.testing.assert_array_equal(arrays[2][0], big.astype(np.float32))
    _write(tmp_path, _crops(skdata.astronaut(), 1, 6), "rgb")
    with pytest.raises(DataError, match="mixes grayscale"):
        read_image_list(tmp_path)  # modes are still checked


def test_16_bit_grey_is_not_cut_to_8_bits_for_colour(tmp_path):
    Image.fromarray(np.full((SIZE, SIZE), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match="uint16 grey images.*cut to 8 bits"):
        load_dataset(tmp_path, color="rgb")


def test_a_model_of_images_in_0_1_refuses_8_bit_files_saying_divide(tmp_path, capsys):
    floats = np.stack(_crops(skdata.camera(), 30, 7)).astype(np.float32) / 255
    np.save(tmp_path / "floats.npy", floats)  # (N, H, W) in [0, 1]: PyTorch's habit
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "floats.npy"), "--out", str(run), *QUICK]) == 0
    pngs = tmp_path / "pngs"
    _write(pngs, _crops(skdata.camera(), 2, 8), "p")
    assert main(["encode", str(run), "--data", str(pngs), "--out", str(tmp_path / "z.npy")]) == 2
    line = _one_error(capsys)
    assert "values in [0, 1]" in line and "divide them by 255" in line
    argv = ["encode", str(run), "--data", str(pngs), "--units", "convert", "--out", "z.npy"]
    assert main([*argv[:-1], str(tmp_path / "z.npy")]) == 0


def test_a_fully_convolutional_model_reconstructs_mixed_sizes_as_they_are(grey, tmp_path):
    run = tmp_path / "dncnn"
    argv = ["train", "--data", str(grey), "--model", "dncnn", "--out", str(run), "--epochs", "1"]
    assert main([*argv, "--quiet"]) == 0
    mixed = tmp_path / "mixed"
    _write(mixed, _crops(skdata.camera(), 2, 10), "a")
    Image.fromarray(skdata.camera()[:31, :17]).save(mixed / "odd.png")
    out = tmp_path / "recon"
    assert main(["reconstruct", str(run), "--data", str(mixed), "--out", str(out)]) == 0
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"a00.png": (SIZE, SIZE), "a01.png": (SIZE, SIZE), "odd.png": (17, 31)}
    # a model that needs one size still refuses them, naming the sizes
    dense = tmp_path / "dense"
    assert main(["train", "--data", str(grey), "--out", str(dense), *QUICK]) == 0
    with pytest.raises(DataError, match=r"2 sizes"):
        aekit.reconstruct(dense, str(mixed), device="cpu")


def test_a_fully_convolutional_model_trains_on_crops_of_mixed_sizes(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    _write(mixed, _crops(skdata.camera(), 6, 11), "a")  # 20 x 20
    Image.fromarray(skdata.camera()[100:160, 200:241]).save(mixed / "big.png")  # 60 x 41
    run = tmp_path / "run"
    argv = ["train", "--data", str(mixed), "--model", "dncnn", "--out", str(run), "--epochs", "1"]
    assert main([*argv, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("aekit: warning:") == 1 and "trains on random 20x20 crops" in err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["patch"] == 20 and cfg["data"]["image_shape"] == [1, 20, 20]
    assert cfg["data"]["crops"] is True
    ds = load_dataset(mixed, patch=20)  # 6 crops, and 3 x 2 tiles of the 60 x 41 image
    assert ds.X.shape == (12, 400) and ds.files[6:8] == ("big.png#0,0", "big.png#0,20")
    big = np.asarray(Image.open(mixed / "big.png"), np.float32)
    np.testing.assert_array_equal(ds.X[7].reshape(20, 20), big[0:20, 20:40])
    assert main(["eval", str(run), "--json"]) == 0  # its held-out tiles, found again
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--quiet"]) == 0
    with pytest.raises(DataError, match="do not fit the smallest image"):
        load_dataset(mixed, patch=32)


def test_a_streamed_table_run_records_its_columns_range_too(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    np.save(tmp_path / "train.npy", X)
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "train.npy"), "--stream", "--out", str(run)]
    assert main([*argv, *QUICK]) == 0
    units = json.loads((run / "config.json").read_text())["units"]
    assert units["image"] is False and len(units["lo"]) == 5
    ranges = zip(units["lo"], units["hi"], strict=True)  # the training blocks' range
    assert all(lo >= X[:, j].min() and hi <= X[:, j].max() for j, (lo, hi) in enumerate(ranges))
    shifted = X[:50].copy()
    shifted[:, 2] += 1000
    with pytest.warns(UserWarning, match=r"columns 2"):
        aekit.load(run).encode_numpy(shifted)
