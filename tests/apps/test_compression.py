"""Image compression: the quantised latent, its tables, the .aek bitstream, the CLI."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

import aekit
from aekit.apps.compression import decode_codes, estimated_bits
from aekit.apps.compression_report import compression_report
from aekit.cli import main
from aekit.data import Scaler
from aekit.errors import AekitError, CompressedFileError, ConfigError
from aekit.functional.rate import bits_from_likelihoods, mean_psnr
from aekit.io.bitstream import HEADER_SIZE, MAGIC
from aekit.nn import build_model
from aekit.nn.latent.quantized import PRECISION, TAIL_MASS
from aekit.training import TrainConfig, fit


def _codec(seed: int = 0, epochs: int = 6):
    """A dense quantised model trained for a few seconds on the 1,797 digits (raw 0..16)."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    torch.manual_seed(seed)
    model = build_model(
        "dense",
        64,
        latent="quantized",
        latent_dim=12,
        beta=0.05,
        hidden=(64,),
        image_shape=(1, 8, 8),
    )
    model.scaler = Scaler.fit(X, "image", max_value=16.0)
    fit(model, model.scaler.transform(X), config=TrainConfig(epochs=epochs, lr=3e-3, seed=seed))
    return model.eval(), X


@pytest.fixture(scope="module")
def codec():
    return _codec()


@pytest.fixture(scope="module")
def compressed(codec):
    model, X = codec
    return aekit.compress(model, X)


def test_round_trip_is_bit_exact_with_the_models_reconstruction(codec, compressed):
    model, X = codec
    np.testing.assert_array_equal(decode_codes(model, compressed), model.encode_numpy(X))
    X_hat = aekit.decompress(model, compressed)
    assert X_hat.dtype == np.float32 and X_hat.shape == X.shape
    np.testing.assert_array_equal(X_hat, model.reconstruct_numpy(X))


def test_the_report_counts_every_byte_of_the_file(codec, compressed):
    model, X = codec
    report, data, X_hat = compression_report(model, X)
    assert data == compressed  # compression is deterministic
    assert report.bytes == len(data) and report.images == len(X)
    assert report.bpp == pytest.approx(8 * len(data) / (len(X) * 64), rel=1e-12)
    assert report.psnr == pytest.approx(mean_psnr(X_hat, X, 16.0))
    assert 0 < report.ssim <= 1 and report.data_range == 16.0


def test_a_report_times_only_what_ran(codec, compressed):
    from aekit.apps.compression_report import compression_report

    model, X = codec
    made, _, _ = compression_report(model, X)
    assert made.encode_images_per_s > 0 and "encode" in made.lines()[1]
    given, _, _ = compression_report(model, X, compressed)  # decoding a file: nothing encoded
    assert given.encode_images_per_s is None and given.to_dict()["encode_images_per_s"] is None
    assert given.lines()[1].startswith("decode ") and "encode" not in " ".join(given.lines())


def test_the_coder_spends_what_the_entropy_model_estimates(codec, compressed):
    model, X = codec
    estimate = estimated_bits(model, X)
    actual = 8 * (len(compressed) - HEADER_SIZE)
    assert abs(actual - estimate) / estimate < 0.02
    # the "rate" term of the evaluation record is the same estimate, per pixel
    with torch.no_grad():
        record = model(torch.as_tensor(model.scaler.transform(X), dtype=torch.float32))
    assert float(record["rate"]) * 64 * len(X) == pytest.approx(estimate, rel=1e-4)


def test_tables_follow_the_learned_cdf(codec):
    model, _ = codec
    latent = model.latent
    m, lo, counts = latent.tables()
    for c, table in enumerate(counts):
        assert table.sum() == 2**PRECISION and table.min() >= 1
        ks = torch.arange(lo[c], lo[c] + len(table), dtype=torch.float32)
        values = torch.as_tensor(m[c]) + ks  # m_c + k, as the quantiser forms them
        wide = values[:, None].expand(-1, model.config.latent_dim)  # every channel at values
        p = latent.prior.likelihood(wide)[:, c].detach().numpy()
        assert p.sum() > 1 - 4 * TAIL_MASS - 1e-6  # the table covers all but the far tails
        np.testing.assert_allclose(table / 2**PRECISION, p, atol=len(table) / 2**PRECISION)


def test_cdf_is_monotone_and_likelihoods_sum_to_one(codec):
    prior = codec[0].latent.prior
    v = torch.linspace(-300, 300, 6001, dtype=torch.float64).expand(prior.biases[0].shape[0], 1, -1)
    logits = prior.cdf_logits(v)[:, 0]
    assert (logits.diff(dim=1) >= 0).all()
    grid = torch.arange(-300.0, 301.0)[:, None].expand(-1, len(logits))
    totals = prior.likelihood(grid).sum(0)
    np.testing.assert_allclose(totals.detach().numpy(), 1.0, atol=1e-5)


def test_bits_from_likelihoods():
    p = torch.tensor([[0.5, 0.25], [1.0, 0.125]])
    np.testing.assert_allclose(bits_from_likelihoods(p).numpy(), [3.0, 3.0])
    assert float(bits_from_likelihoods(p, "sum")) == 6.0


def test_mean_psnr_agrees_with_torchmetrics():
    from torchmetrics.functional.image import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (2, 50, 64))
    expected = float(peak_signal_noise_ratio(torch.as_tensor(y), torch.as_tensor(x), 255.0))
    assert mean_psnr(y, x, 255.0) == pytest.approx(expected)


def _with_version(data: bytes, version: int) -> bytes:
    return data[:4] + struct.pack("<H", version) + data[6:]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


BAD_FILES = {
    "truncated": (lambda d: d[:-3], "truncated"),
    "cut inside the header": (lambda d: d[:20], "truncated"),
    "a corrupt payload byte": (lambda d: _flip(d, HEADER_SIZE + 5), "checksum"),
    "a corrupt header byte": (lambda d: _flip(d, 20), "checksum"),
    "trailing bytes": (lambda d: d + b"\0", "stray bytes"),
    "another format": (lambda d: b"\x89PNG\r\n\x1a\n" + d[8:], "not an aekit compressed file"),
    "an empty file": (lambda d: b"", "not an aekit compressed file"),
    "a newer version": (lambda d: _with_version(d, 4), "format version 4"),
    "version 2 without a residual layer": (lambda d: _with_version(d, 2), "flags"),
    "version 3 without file names": (lambda d: _with_version(d, 3), "flags"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_damaged_or_foreign_file_is_refused_in_one_line(codec, compressed, case):
    damage, words = BAD_FILES[case]
    with pytest.raises(CompressedFileError) as info:
        aekit.decompress(codec[0], damage(compressed))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, AekitError)


def test_another_models_file_is_refused(codec, compressed):
    other, _ = _codec(seed=1, epochs=1)
    with pytest.raises(CompressedFileError, match="another model"):
        aekit.decompress(other, compressed)
    assert compressed[:4] == MAGIC


def test_only_a_quantised_model_compresses(digits01):
    with pytest.raises(ConfigError, match="quantised"):
        aekit.compress(build_model("dense", 64), digits01)


@pytest.mark.parametrize(
    "option", [{"latent_activation": "sigmoid"}, {"kl_warmup": 2}, {"l1_weight": 0.1}]
)
def test_a_quantised_latent_refuses_settings_it_does_not_use(option):
    with pytest.raises(ConfigError):
        build_model("compress", 64, image_shape=(1, 8, 8), **option)


def test_cli_compresses_and_decompresses_a_run_trained_in_seconds(tmp_path, capsys):
    run = aekit.train(
        "digits", out=tmp_path / "run", model="compress", epochs=3,
        model_options={"latent_dim": 16, "beta": 0.1},
    )  # fmt: skip
    f, report = tmp_path / "x.aek", tmp_path / "report.json"
    argv = ["compress", str(run.out), "--data", "digits", "--limit", "40"]
    assert main([*argv, "--out", str(f), "--json", str(report)]) == 0
    stats = json.loads(report.read_text())
    assert f.stat().st_size == stats["bytes"] and stats["images"] == 40
    assert stats["bpp"] == pytest.approx(8 * stats["bytes"] / (40 * 64))
    assert main(["decompress", str(run.out), str(f), "--out", str(tmp_path / "x.npy")]) == 0
    model = aekit.load(run.out)
    X = aekit.load_dataset("digits", limit=40).X
    expected = model.reconstruct_numpy(X)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), expected)
    pngs = tmp_path / "pngs"
    capsys.readouterr()
    assert main(["decompress", str(run.out), str(f), "--out", str(pngs), "--data", "digits",
                 "--limit", "40"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    # only what decompress timed: decoding (it printed ~65 million images/s of "encode" before)
    assert "decode" in said and "images/s" in said and "encode" not in said
    assert "PSNR" in said
    from PIL import Image

    files = sorted(pngs.glob("*.png"))
    assert len(files) == 40
    first = np.asarray(Image.open(files[0]))
    np.testing.assert_array_equal(
        first, np.clip(np.rint(expected[0] / 16 * 255), 0, 255).astype(np.uint8).reshape(8, 8)
    )
    f.write_bytes(f.read_bytes()[:-1])
    assert main(["decompress", str(run.out), str(f), "--out", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error:") and "truncated" in err and err.count("\n") == 1
    assert not (tmp_path / "y.npy").exists()
