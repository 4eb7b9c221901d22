"""The spatial codec (--model codec): bit-exact round trips at any size, the rate knob, the
coder against its model, damaged files, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.apps import codec
from aekit.apps.compression import compress as compress_rows
from aekit.cli import main
from aekit.data.scaling import Scaler
from aekit.data.units import Units
from aekit.errors import CompressedFileError, ConfigError
from aekit.nn import build_model
from aekit.nn.latent.hyperprior import SCALE_TABLE, gaussian_likelihood, scale_index

SIZES = [(1, 1), (17, 33), (1000, 3), (8, 8)]


def small(c: int = 1, seed: int = 0, transform: str = "gdn", gain_prior: bool = False):
    """An untrained small codec for 8-bit images of C channels (scaler pixel / 255)."""
    torch.manual_seed(seed)
    widths = dict(channels=8, latent_dim=6) if transform == "gdn" else dict(post_channels=4)
    model = build_model(
        "codec", c * 64, image_shape=(c, 8, 8), stages=2, hyper_channels=4,
        lambdas=(0.001, 0.01, 0.1), transform=transform, gain_prior=gain_prior, **widths,
    )  # fmt: skip
    model.scaler = Scaler("image", np.zeros(1), np.array([1 / 255]))
    model.units = Units("uint8", np.zeros(1), np.full(1, 255.0), 255.0, True)
    return model.eval()


def images(c: int, sizes=SIZES, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for h, w in sizes:
        smooth = np.cumsum(rng.integers(-8, 9, (c, h, w)), axis=-1) + 128
        out.append(np.clip(smooth, 0, 255).astype(np.float32))
    return out


@pytest.mark.parametrize("transform", ["dct", "gdn", "dct-gain-prior"])
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("quality", [0.0, 0.7, 2.0])
def test_odd_sizes_round_trip_bit_exactly(c, quality, transform):
    gain_prior = transform.endswith("gain-prior")
    model = small(c, transform=transform.split("-")[0], gain_prior=gain_prior)
    imgs = images(c)
    data = codec.compress_images(model, imgs, quality=quality, names=[f"{i}.png" for i in range(4)])
    out = codec.decompress_images(model, data)
    ref = codec.reconstruction(model, imgs, quality=quality)
    assert isinstance(out, list) and [o.shape for o in out] == [v.shape for v in imgs]
    for a, b, v in zip(out, ref, imgs, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 255
        assert np.isfinite(a).all() and a.shape == v.shape
    from aekit.apps.compression import file_names

    assert file_names(data) == ("0.png", "1.png", "2.png", "3.png")


def test_images_of_one_size_come_back_as_an_array_in_their_shape():
    model = small(1)
    X = np.stack([v[0] for v in images(1, [(12, 20)] * 5)])  # (N, H, W)
    out = codec.decompress_images(model, codec.compress_images(model, X, quality=1))
    assert isinstance(out, np.ndarray) and out.shape == X.shape
    np.testing.assert_array_equal(out, codec.reconstruction(model, X, quality=1))


@pytest.fixture(scope="module")
def trained():
    """A small codec trained 300 steps on 63 8x8 images, and those images (rows in [0, 1])."""
    model = small(1)
    model.train()
    X = np.stack(images(1, [(8, 8)] * 63, seed=1)).reshape(63, -1) / 255
    x = torch.as_tensor(X, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        loss = model(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), X


def test_the_coded_path_decodes_what_training_priced_and_more_rate_means_less_error(trained):
    model, X = trained
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        x_hat = model(x)["x_hat"].numpy()  # eval: image i at knob i % 3
    imgs = list((X * 255).reshape(63, 1, 8, 8).astype(np.float32))
    errors = []
    for q in range(3):
        rows = np.arange(63) % 3 == q
        out = codec.reconstruction(
            model, [v for v, r in zip(imgs, rows, strict=True) if r], quality=q
        )
        coded = np.asarray(out).reshape(rows.sum(), -1)
        # the coder decodes the record's x_hat (clipped), to float rounding: << 1 grey level
        np.testing.assert_allclose(coded, np.clip(x_hat[rows] * 255, 0, 255), atol=0.02)
        errors.append(float(np.mean((coded - X[rows] * 255) ** 2)))
    assert errors[2] < errors[0]


def test_the_coder_spends_what_the_entropy_model_estimates(trained):
    model, X = trained
    for imgs in (
        list((X * 255).reshape(63, 1, 8, 8).astype(np.float32)),
        images(1, [(40, 56)] * 3),
    ):
        data = codec.compress_images(model, imgs, quality=1.5)
        bits = codec.estimated_bits(model, imgs, quality=1.5).sum()
        fixed = 8 * (52 + 1 + 2 + 4)  # header, knob, one length
        ends = 8 * len(data) - fixed - bits  # what the two coders' flushes add: 0 to 2 x 64
        assert bits > 500
        assert -0.01 * bits - 16 < ends < 2 * 64 + 0.01 * bits + 16, (8 * len(data), bits)


def test_the_gaussian_likelihood_is_the_integral_of_the_density():
    k = torch.tensor([0.0, 1.0, -3.0, 10.0], dtype=torch.float64)
    sigma = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    from math import erf, sqrt

    def phi(v):
        return 0.5 * (1 + erf(v / sqrt(2)))

    expected = [
        phi((a + 0.5) / s) - phi((a - 0.5) / s)
        for a, s in zip(k.tolist(), sigma.tolist(), strict=True)
    ]
    np.testing.assert_allclose(gaussian_likelihood(k, sigma).numpy(), expected, rtol=1e-5)
    # the coder's scale is the least table scale at or above sigma
    idx = scale_index(torch.tensor([0.01, 0.11, 1.0, 1e6])).numpy()
    assert idx[0] == 0 and idx[-1] == len(SCALE_TABLE) - 1
    assert SCALE_TABLE[idx[2]] >= 1.0 > SCALE_TABLE[idx[2] - 1]


@pytest.mark.parametrize("share", [0.25, 0.75])
def test_a_bpp_target_is_met_within_five_percent(trained, share):
    model = trained[0]
    imgs = images(1, [(24, 24)] * 6, seed=3)

    def bpp(**target):
        return len(codec.compress_images(model, imgs, **target)) * 8 / (6 * 24 * 24)

    low, high = bpp(quality=0), bpp(quality=2)
    assert high > 1.2 * low  # the knob spans rates
    target = low + share * (high - low)
    assert abs(bpp(bpp=target) - target) <= 0.05 * target


def test_a_psnr_target_is_reached_when_the_model_can():
    model = small(1)
    imgs = images(1, [(16, 16)] * 4, seed=4)

    def psnr(out):
        mse = np.mean((np.asarray(out, np.float64) - np.asarray(imgs)) ** 2, axis=(1, 2, 3))
        return 10 * np.log10(255**2 / mse)

    best = psnr(codec.reconstruction(model, imgs, quality=2)).min()
    worst = psnr(codec.reconstruction(model, imgs, quality=0)).max()
    target = (best + worst) / 2 if best > worst else best - 0.5
    out = codec.reconstruction(model, imgs, psnr=target)
    assert (psnr(out) >= target - 1e-6).all()


def test_damaged_truncated_and_foreign_files_are_refused():
    model, imgs = small(1), images(1)
    data = codec.compress_images(model, imgs, quality=1)
    for bad in (data[:-3], data[:60], data[:-1] + bytes([data[-1] ^ 1]), b"PNG." + data[4:]):
        with pytest.raises(CompressedFileError):
            codec.decompress_images(model, bad)
    with pytest.raises(CompressedFileError, match="another model"):
        codec.decompress_images(small(1, seed=1), data)
    rows = build_model("compress", 64, image_shape=(1, 8, 8), channels=(4, 8), latent_dim=5)
    with pytest.raises(CompressedFileError):
        codec.decompress_images(model, compress_rows(rows.eval(), np.random.rand(3, 64)))
    with pytest.raises(ConfigError, match="not a spatial codec"):
        codec.compress_images(rows, imgs)


def test_bad_targets_and_images_are_one_line_errors():
    model = small(1)
    with pytest.raises(ConfigError, match="outside"):
        codec.compress_images(model, images(1), quality=9)
    with pytest.raises(ConfigError, match="one of"):
        codec.compress_images(model, images(1), quality=1, bpp=1)
    with pytest.raises(Exception, match="channel"):
        codec.compress_images(model, images(3))
    with pytest.raises(Exception, match="255|units|range"):
        codec.compress_images(model, [v / 255 for v in images(1)])  # fractions for 0-255


def test_cli_trains_on_mixed_sizes_compresses_to_targets_and_keeps_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name, (h, w) in {"a.png": (24, 40), "sub/b.png": (33, 17), "c.png": (20, 20)}.items():
        base = np.cumsum(rng.integers(-6, 7, (h, w, 3)), axis=1) + 128
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / name)
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--model", "codec", "--stages", "2",
            "--hyper-channels", "4", "--epochs", "2", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    out = tmp_path / "x.aek"
    assert (
        main(["compress", str(run), "--data", str(folder), "--out", str(out), "--quality", "3"])
        == 0
    )
    assert "bits per pixel" in capsys.readouterr().out
    dec = tmp_path / "dec"
    assert main(["decompress", str(run), str(out), "--out", str(dec)]) == 0
    got = sorted(p.relative_to(dec).as_posix() for p in dec.rglob("*.png"))
    assert got == ["a.png", "c.png", "sub/b.png"]
    assert Image.open(dec / "sub/b.png").size == (17, 33)
    assert (
        main(["compress", str(run), "--data", str(folder), "--out", str(out), "--psnr", "20"]) == 0
    )
    assert main(["report", str(run)]) == 0  # its held-out image's curve beside JPEG and WebP
    page = (run / "report.html").read_text()
    assert "Rate and distortion" in page and "aekit (one model)" in page and "WebP" in page
    assert "the 1 whole image(s) that" in page  # trained on crops: the held-out image whole
    # a rate knob on a run whose rate is fixed: one line, exit 2
    rows = tmp_path / "rows"
    assert (
        main(["train", "--model", "compress", "--epochs", "1", "--quiet", "--out", str(rows)]) == 0
    )
    capsys.readouterr()
    assert main(["compress", str(rows), "--out", str(tmp_path / "r.aek"), "--bpp", "1"]) == 2
    err = capsys.readouterr().err
    assert "spatial codec" in err and "Traceback" not in err


def test_a_gain_prior_codec_prices_every_knob_from_one_start_and_its_scales_follow_the_gain():
    model = small(3, transform="dct", gain_prior=True)
    x = torch.as_tensor(np.stack(images(3, [(16, 24)] * 20, seed=2)) / 255, dtype=torch.float32)
    rows = x[:, :, :8, :8].reshape(20, -1)
    start = model.latent.start_from(model, rows, steps=30)
    y = model.features(rows)
    spread = (y - y.mean((0, 2, 3))[None, :, None, None]).pow(2).mean((0, 2, 3)).sqrt()
    torch.testing.assert_close(start["spread"], spread)
    assert start["rate"] > 0
    lat = model.latent
    with torch.no_grad():
        z_hat = lat.quantise_z(lat.hyper_analysis(y))
        low = lat.mean_scale(z_hat, y.shape[-2:], torch.zeros(20))
        high = lat.mean_scale(z_hat, y.shape[-2:], torch.full((20,), 2.0))
    a_low, _ = lat.gains(torch.zeros(1))
    a_high, _ = lat.gains(torch.full((1,), 2.0))
    # sigma - SCALE_MIN and mu scale with the knob's gain: the same start at every rate
    from aekit.nn.latent.hyperprior import SCALE_MIN

    torch.testing.assert_close((high[1] - SCALE_MIN) / a_high, (low[1] - SCALE_MIN) / a_low)
    torch.testing.assert_close(high[0] / a_high, low[0] / a_low)
    with pytest.raises(ConfigError, match="need the knob q"):
        lat.mean_scale(z_hat, y.shape[-2:])
    with pytest.raises(ConfigError, match="gain_prior is true or false"):
        build_model("codec", 64, image_shape=(1, 8, 8), stages=2, gain_prior="yes")


def test_cli_trains_a_gain_prior_codec_from_its_data_start_and_round_trips(tmp_path):
    import json

    rng = np.random.default_rng(1)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        base = np.cumsum(rng.integers(-6, 7, (24, 32, 3)), axis=1) + 128
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--model", "codec", "--stages", "2",
            "--hyper-channels", "4", "--epochs", "1", "--gain-prior", "--quiet",
            "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    text = json.dumps(json.loads((run / "config.json").read_text()))
    assert '"gain_prior": true' in text and '"entropy_start"' in text
    import aekit

    model = aekit.load(run)
    imgs = images(3, [(17, 33), (1, 1)])
    for q in (0.0, 3.5, 7.0):
        data = codec.compress_images(model, imgs, quality=q)
        for a, b in zip(codec.decompress_images(model, data),
                        codec.reconstruction(model, imgs, quality=q), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)


def test_a_gain_prior_codec_stopped_before_its_first_checkpoint_starts_over_the_same(tmp_path):
    """The data start is a step before the first checkpoint: a run stopped there (config.json
    written, no checkpoint) and resumed begins where train began it, so it ends the same."""
    from safetensors.torch import load_file

    import aekit
    from aekit.training import Callback

    class Stop(Callback):
        def on_epoch_start(self, loop, epoch):
            raise KeyboardInterrupt

    rng = np.random.default_rng(2)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        base = np.cumsum(rng.integers(-6, 7, (24, 32)), axis=1) + 128
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    options = dict(model="codec", epochs=1, device="cpu", model_options={
        "stages": 2, "hyper_channels": 4, "gain_prior": True})  # fmt: skip
    aekit.train(str(folder), out=tmp_path / "clean", **options)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        aekit.train(str(folder), out=cut, callbacks=[Stop()], **options)
    for p in cut.iterdir():  # what a kill after config.json, before any checkpoint, leaves
        if p.name != "config.json":
            p.unlink()
    assert [p.name for p in cut.iterdir()] == ["config.json"]
    aekit.train(out=cut, resume=True, device="cpu")
    a = load_file(tmp_path / "clean/model.safetensors")
    b = load_file(tmp_path / "cut/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
