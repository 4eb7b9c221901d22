"""The learned context model (--model lossless): lossless and step-q round trips at any size,
grey and colour, the q/2 bound on a photograph, the coder against the model's estimate,
damaged files, training, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.apps import lossless
from aekit.cli import main
from aekit.data.scaling import Scaler
from aekit.errors import CompressedFileError, ConfigError, DataError
from aekit.io.bitstream import HEADER_SIZE
from aekit.nn import build_model
from aekit.nn.arch.context import plane_order, step_bins, step_symbols

SIZES = [(1, 1), (17, 33), (1000, 3), (8, 8)]


def small(c: int = 1, seed: int = 0, block: int = 4):
    """An untrained small context model for 8-bit images of C channels."""
    torch.manual_seed(seed)
    model = build_model("lossless", c * 64, image_shape=(c, 8, 8), width=8, depth=2, block=block)
    model.scaler = Scaler("image", np.zeros(1), np.array([1 / 255]))
    return model.eval()


def images(c: int, sizes=SIZES, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for h, w in sizes:
        smooth = np.cumsum(rng.integers(-8, 9, (c, h, w)), axis=-1) + 128
        out.append(np.clip(smooth, 0, 255).astype(np.uint8))
    return out


def photo() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the photo")

    return skimage_data.camera()[180:245, 200:301]  # 65 x 101: not a multiple of the block


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("step", [1, 2, 5])
def test_odd_sizes_round_trip_within_half_a_step(c, step):
    model, imgs = small(c), images(c)
    data = lossless.compress_images(model, imgs, step=step)
    out = lossless.decompress_images(model, data)
    assert isinstance(out, list) and [o.shape for o in out] == [v.shape for v in imgs]
    for a, v in zip(out, imgs, strict=True):
        err = np.abs(a - v.astype(np.int64))
        assert err.max() <= step / 2 and a.min() >= 0 and a.max() <= 255
        if step == 1:
            np.testing.assert_array_equal(a, v)
    assert lossless.compress_images(model, imgs, step=step) == data  # deterministic


def test_a_photograph_is_lossless_at_step_1_and_within_q_over_2_at_step_q():
    model, x = small(block=2), photo()
    np.testing.assert_array_equal(lossless.decompress_images(model, lossless.compress_images(
        model, x[None], step=1))[0], x)  # fmt: skip
    sizes = []
    for q in (3, 4, 16):
        data = lossless.compress_images(model, [x], step=q)
        err = np.abs(lossless.decompress_images(model, data)[0] - x.astype(np.int64))
        assert err.max() <= q / 2 and err.max() >= q // 2 - 1  # the lattice is used, not wasted
        sizes.append(len(data))
    assert sizes == sorted(sizes, reverse=True)


def test_step_symbols_partition_the_pixels_into_cells_within_q_over_2():
    v = np.arange(256)
    for q in range(1, 256):
        k = step_symbols(v, q)
        assert np.all(np.abs(v - np.minimum(q * k, 255)) <= q / 2)
        first, last = step_bins(q, 256)
        assert first[0] == 0 and last[-1] == 255 and np.all(first[1:] == last[:-1] + 1)
        assert np.array_equal(k, np.repeat(np.arange(len(first)), last - first + 1))
    assert sorted(plane_order(4, 3)) == [(a, b, c) for a in range(4) for b in range(4)
                                         for c in range(3)]  # fmt: skip


def test_the_coder_spends_what_the_model_estimates():
    model = small()
    x = images(1, [(40, 56)] * 3)
    for q in (1, 4):
        data = lossless.compress_images(model, x, step=q)
        coded = 8 * (len(data) - HEADER_SIZE - 2)
        est = lossless.estimated_bits(model, x, step=q)
        assert abs(coded - est) <= 0.01 * est + 64, (coded, est)


def test_the_probabilities_are_the_mixtures_mass_and_training_lowers_the_bits():
    from aekit.training import TrainConfig, fit

    model = small()
    params = torch.randn(7, 15)
    for q in (1, 8):
        probs = model.probabilities(params, q)
        first, last = (torch.as_tensor(t) for t in step_bins(q, 256))
        mass = torch.stack([2.0 ** model.log2_mass(params[:, :, None, None].float(),
                            f.expand(7, 1, 1), la.expand(7, 1, 1))[:, 0, 0]
                            for f, la in zip(first, last, strict=True)], 1)  # fmt: skip
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-9)
        np.testing.assert_allclose(probs, mass.double(), atol=1e-5)
    rng = np.random.default_rng(0)
    rows = np.repeat(rng.integers(0, 4, (256, 1, 1)) * 60, 64, 1).reshape(256, 64)
    rows = (rows + rng.integers(0, 3, rows.shape)) / 255.0
    x = torch.as_tensor(rows[:64], dtype=torch.float32)
    before = float(model.train()(x)["loss"].detach())
    fit(model, rows.astype(np.float32), config=TrainConfig(epochs=8, batch_size=32, lr=3e-3))
    assert float(model.train()(x)["loss"].detach()) < 0.8 * before
    model.loss(x)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_damaged_truncated_and_foreign_files_are_refused():
    model, imgs = small(), images(1)
    data = lossless.compress_images(model, imgs, step=1)
    broken = bytearray(data)
    broken[-3] ^= 0xFF
    bad = [data[:-5], bytes(broken), b"PK\x03\x04" + data[4:], data + b"\x00"]
    other = small(seed=1)
    for d in bad:
        with pytest.raises(CompressedFileError) as e:
            lossless.decompress_images(model, d)
        assert "\n" not in str(e.value)
    with pytest.raises(CompressedFileError, match="another model"):
        lossless.decompress_images(other, data)
    from aekit.apps.compression import compress

    rows = build_model("compress", 64, image_shape=(1, 8, 8), channels=(2, 2), latent_dim=2)
    with pytest.raises(CompressedFileError):
        lossless.decompress_images(model, compress(rows, np.zeros((2, 64)), step=1))


def test_bad_steps_images_and_models_are_one_line_errors():
    model = small()
    for step in (0, 1.5, 256, -1):
        with pytest.raises(DataError):
            lossless.compress_images(model, images(1), step=step)
    for bad in ([np.full((4, 4), 256)], [np.full((4, 4), 0.5)], [], [np.zeros((2, 4, 4))]):
        with pytest.raises(DataError):
            lossless.compress_images(model, bad, step=1)
    with pytest.raises(ConfigError):
        lossless.compress_images(build_model("compress", 64, image_shape=(1, 8, 8)), images(1))
    with pytest.raises(ConfigError):
        model.encode(torch.zeros(1, 64))


def test_cli_trains_compresses_losslessly_and_decompresses(tmp_path, capsys):
    imgs = np.stack(images(1, [(12, 12)] * 40))
    src = tmp_path / "x.npy"
    np.save(src, imgs)
    run = tmp_path / "run"
    assert main(["train", "--data", str(src), "--model", "lossless", "--scale", "image",
                 "--epochs", "1", "--out", str(run), "--quiet", "--threads", "1"]) == 0  # fmt: skip
    out = tmp_path / "x.aek"
    assert main(["compress", str(run), "--data", str(src), "--out", str(out), "--step", "1"]) == 0
    assert "lossless" in capsys.readouterr().out
    back = tmp_path / "back.npy"
    assert main(["decompress", str(run), str(out), "--out", str(back)]) == 0
    np.testing.assert_array_equal(np.load(back), imgs)
    assert main(["compress", str(run), "--data", str(src), "--out", str(out), "--bpp", "1"]) == 2


def test_a_bin_far_above_the_mean_keeps_its_mass_and_gradient():
    model = small()
    k = model.config.mixtures
    params = torch.zeros(1, 3 * k, 1, 1)
    params[:, 2 * k :] = -5.0  # scale e^-5 in [-1, 1] units: about 0.85 pixel levels
    params.requires_grad_(True)
    first = torch.tensor([[[150]]])  # the mean is at 127.5: this bin is ~26 scales above
    bits = -model.log2_mass(params, first, first)
    exact = -np.log2(model.probabilities(params.detach()[:, :, 0, 0], 1)[0, 150].item())
    assert np.isfinite(float(bits)) and abs(float(bits) - exact) < 1e-2 * exact
    bits.sum().backward()
    assert params.grad[:, k : 2 * k].abs().sum() > 0  # the means are pulled towards it


def test_the_anchor_is_the_mean_of_the_decoded_neighbours_inside_the_image():
    model = small(block=2)
    assert model.config.anchor  # the preset's
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.integers(0, 256, (1, 1, 5, 7)), dtype=torch.float32)  # padded to 6x8
    planes, inside = model.fold(x)
    scaled = planes * (2 / 255) - 1
    for r in range(model.planes):
        known = torch.zeros_like(planes)
        known[:, :r] = 1.0
        got = model.anchor(scaled * known, known * inside)[0, r]
        img_known = model.unfold(known * inside, (6, 8))[0, 0]
        img = model.unfold(scaled, (6, 8))[0, 0]
        dy, dx, _ = model.order[r]
        for i in range(got.shape[0]):
            for j in range(got.shape[1]):
                y, xx = 2 * i + dy, 2 * j + dx
                near = [(y + a, xx + b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]
                near = [(u, v) for u, v in near if 0 <= u < 6 and 0 <= v < 8 and img_known[u, v]]
                want = np.mean([float(img[u, v]) for u, v in near]) if near else 0.0
                assert float(got[i, j]) == pytest.approx(want, abs=1e-6)
    # the means the coder uses are the anchor plus at most 0.5 (of [-1, 1]) either way
    values = planes.expand(2, -1, -1, -1)
    known = torch.zeros_like(values)
    known[:, :2] = 1.0
    plane = torch.tensor([2, 2])
    params = model.params(values, known, inside, torch.tensor([1, 1]), plane)
    centre = model.anchor((values * (2 / 255) - 1) * known, known * inside)[:, 2]
    mu = model._split(params)[1]  # the last `free` components keep absolute means
    anchored = mu[:, : model.config.mixtures - model.config.free]
    assert (anchored - centre[:, None]).abs().max() <= 0.5


def test_a_model_without_the_anchor_still_codes_and_keeps_its_record():
    torch.manual_seed(0)
    old = build_model("lossless", 64, image_shape=(1, 8, 8), width=8, depth=2, anchor=False)
    old.scaler = Scaler("image", np.zeros(1), np.array([1 / 255]))
    assert "anchor" not in old.config.legacy_dict()  # its .aek files' model hash as before
    assert small().config.legacy_dict()["anchor"] is True
    imgs = images(1, sizes=[(17, 33), (8, 8)])
    blob = lossless.compress_images(old.eval(), imgs, step=1)
    back = lossless.decompress_images(old, blob)
    assert all(np.array_equal(a, b) for a, b in zip(back, imgs, strict=True))
