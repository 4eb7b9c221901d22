"""The residual layer of a compressed file (apps/residual.py): error bounds, the adaptive
coder, lossless coding, format version 2, and the CLI's --step."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from test_compression import _codec

import aekit
from aekit.apps import residual
from aekit.apps.compression import estimated_bits, reconstruction
from aekit.apps.compression_report import compression_report
from aekit.cli import main
from aekit.errors import AekitError, CompressedFileError, DataError
from aekit.io.bitstream import HEADER_SIZE


@pytest.fixture(scope="module")
def codec():
    return _codec()


@pytest.mark.parametrize("step", [0.01, 0.3, 1.0, 2.5, 7.0])
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("grid", [True, False, None])
def test_every_value_lies_within_half_a_step(step, integer, grid):
    rng = np.random.default_rng(int(step * 100))
    X = rng.normal(0, 3, (40, 30))
    X = np.rint(X) if integer else X
    x_hat = X + rng.normal(0, 1, X.shape)  # a prediction with errors of all sizes
    params, k = residual.symbols(X, x_hat, step, grid=grid)
    out = residual.reconstruct(x_hat, k, params)
    assert params.integer == (integer and step == int(step))
    assert grid is None or params.grid == grid
    assert np.abs(out - X).max() <= step / 2 + 1e-12
    assert out.min() >= X.min() and out.max() <= X.max()  # the clip to [lo, hi]
    assert k.min() >= 0 and k.max() < params.size


def test_the_encoder_keeps_the_coding_with_the_smaller_error():
    rng = np.random.default_rng(5)
    # pixels that sit on the lattice 0, 32, ..., 256 -> 255 (black and white), predicted
    # a few levels off: the grid is exact, the offset keeps the prediction's error
    X = rng.choice([0.0, 255.0], (50, 40))
    params, _ = residual.symbols(X, X + rng.normal(0, 3, X.shape), 32)
    assert params.grid
    # values anywhere, predicted to within 0.5: the offset keeps that precision
    Y = rng.uniform(0, 255, (50, 40))
    p, k = residual.symbols(Y, Y + rng.normal(0, 0.5, Y.shape), 8)
    assert not p.grid
    err = np.abs(residual.reconstruct(Y, k, p) - Y).mean()
    pg, kg = residual.symbols(Y, Y, 8, grid=True)
    assert err < np.abs(residual.reconstruct(Y, kg, pg) - Y).mean()


@pytest.mark.parametrize("value", [0.0, 2.5])
@pytest.mark.parametrize("step", [0.1, 1, 100])
def test_constant_data_round_trip(value, step):
    X = np.full((5, 7), value)
    x_hat = X + np.random.default_rng(0).normal(0, 1, X.shape)
    params, k = residual.symbols(X, x_hat, step)
    words, _ = residual.encode(k, x_hat, params)
    k2 = residual.decode(words, x_hat, params)
    np.testing.assert_array_equal(k2, k)
    np.testing.assert_array_equal(residual.reconstruct(x_hat, k2, params), X)


def test_integer_data_at_step_one_come_back_exactly():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (20, 49)).astype(np.float32)
    x_hat = X + rng.normal(0, 20, X.shape)
    for grid in (True, False):
        params, k = residual.symbols(X, x_hat, 1, grid=grid)
        np.testing.assert_array_equal(residual.reconstruct(x_hat, k, params), X)


@pytest.mark.parametrize("grid, step", [(True, 2), (True, 32), (False, 2)])
def test_the_adaptive_coder_round_trips_and_spends_its_estimate(grid, step):
    rng = np.random.default_rng(1)
    X = np.rint(rng.uniform(0, 255, (600, 64)))
    x_hat = X + rng.laplace(0, 4 + X / 32)  # residuals wider for bright predictions
    params, k = residual.symbols(X, x_hat, step, grid=grid)
    words, bits = residual.encode(k, x_hat, params)
    np.testing.assert_array_equal(residual.decode(words, x_hat, params), k)
    assert abs(8 * len(words) - bits) / bits < 0.01
    assert residual.ideal_bits(k, x_hat, params) == bits  # the same walk, without the coder
    # the ideal length under the adaptive tables, recomputed by hand from the counts
    ctx, centres = residual._contexts(x_hat, params)
    by_hand, counts = 0.0, residual._prior(params, centres)
    for rows in residual._chunks(len(k)):
        for c in range(len(counts)):
            here = k[rows][ctx[rows] == c]  # row-major order within a context
            by_hand -= np.log2(counts[c][here] / counts[c].sum()).sum()
            counts[c] += np.bincount(here, minlength=counts.shape[1])
    assert bits == pytest.approx(by_hand, rel=1e-9)


def test_a_coarse_lattice_takes_its_contexts_from_where_x_hat_sits(monkeypatch):
    """At q = 32 (9 lattice points) a prediction 2 levels off says which way a pixel rounds;
    the lattice point alone does not."""
    rng = np.random.default_rng(4)
    X = np.rint(rng.uniform(0, 255, (4000, 64)))  # 256 tables need data to learn from
    x_hat = X + rng.normal(0, 2, X.shape)
    params, k = residual.symbols(X, x_hat, 32, grid=True)
    assert params.top + 1 < residual.COARSE_LATTICE
    ctx, _ = residual._contexts(x_hat, params)
    assert ctx.max() >= residual.COARSE_LATTICE  # bins of x_hat, more than lattice points
    _, fine = residual.encode(k, x_hat, params)
    monkeypatch.setattr(residual, "COARSE_LATTICE", 0)  # one context per lattice point
    _, lattice = residual.encode(k, x_hat, params)
    assert fine < 0.8 * lattice


def _entropy_bits(symbols):
    p = np.unique(symbols, return_counts=True)[1] / symbols.size
    return -symbols.size * (p * np.log2(p)).sum()


@pytest.mark.parametrize("grid", [True, False])
def test_the_prediction_pays_for_itself(grid):
    """Symbols cost about their conditional entropy given the prediction's context, less
    than one table for all (the prediction replaced by a constant) would."""
    rng = np.random.default_rng(2)
    X = np.rint(rng.uniform(0, 255, (1500, 64)))
    x_hat = X + rng.laplace(0, 0.5 + (X / 40) ** 2)
    params, k = residual.symbols(X, x_hat, 4, grid=grid)
    _, with_prediction = residual.encode(k, x_hat, params)
    _, one_table = residual.encode(k, np.full_like(x_hat, X.min()), params)
    ctx, _ = residual._contexts(x_hat, params)
    conditional = sum(_entropy_bits(k[ctx == c]) for c in np.unique(ctx))
    assert conditional < with_prediction < 1.05 * conditional  # + the tables' learning cost
    assert _entropy_bits(k) < one_table < 1.05 * _entropy_bits(k)
    assert with_prediction < 0.9 * one_table


def test_a_model_file_with_a_residual_layer_decodes_within_its_step(codec):
    model, X = codec  # digits, integers 0..16
    for step in (1, 3):
        data = aekit.compress(model, X, step=step)
        assert struct.unpack("<HH", data[4:8]) == (2, 1)  # format version 2, flag bit 0
        out = aekit.decompress(model, data)
        assert out.dtype == np.float32 and out.shape == X.shape
        np.testing.assert_array_equal(out, reconstruction(model, X, step))
        assert np.abs(out - X).max() <= step / 2
    np.testing.assert_array_equal(aekit.decompress(model, aekit.compress(model, X, 1)), X)
    # without a step the file stays version 1, readable by the aekit that wrote version 1 only
    assert struct.unpack("<HH", aekit.compress(model, X)[4:8]) == (1, 0)


def test_non_integer_data_keep_the_bound(codec):
    model, X = codec
    Y = X + np.random.default_rng(3).uniform(-0.4, 0.4, X.shape).astype(np.float32)
    out = aekit.decompress(model, aekit.compress(model, Y, step=0.5))
    assert np.abs(out.astype(np.float64) - Y).max() <= 0.25 + 1e-5  # float32 output


def test_large_values_at_a_fine_step_come_back_in_float64(codec):
    model, X = codec
    Y = X.astype(np.float64) / 10 + 1e6  # near a million: float32 spacing 0.0625
    out = aekit.decompress(model, aekit.compress(model, Y, step=0.01))
    assert out.dtype == np.float64 and np.abs(out - Y).max() <= 0.005 + 1e-9


def test_the_report_counts_the_residual_layer(codec):
    model, X = codec
    report, data, X_hat = compression_report(model, X, step=1)
    assert report.step == 1 and report.max_abs_error == 0.0 and report.bytes == len(data)
    assert report.to_dict()["psnr"] is None  # lossless: infinite PSNR, stored as null
    assert any("lossless" in line for line in report.lines())
    estimate = estimated_bits(model, X, 1)
    assert abs(8 * (len(data) - HEADER_SIZE) - estimate) / estimate < 0.02
    # decoding an existing file reports that file's step
    again, _, _ = compression_report(model, X, data=aekit.compress(model, X, step=4))
    assert again.step == 4 and 0 < again.max_abs_error <= 2


@pytest.mark.parametrize("step", [0, -1, float("nan"), float("inf"), "x", None])
def test_a_bad_step_is_refused_in_one_line(codec, step):
    model, X = codec
    if step is None:
        step = 1e-5  # too small for the data's range: an alphabet beyond 65,535 symbols
        words = "too small"
    else:
        words = "positive number"
    with pytest.raises(DataError) as info:
        aekit.compress(model, X, step=step)
    assert words in str(info.value) and "\n" not in str(info.value)


P = residual.ResidualParams.SIZE


def _rechecksum(data: bytes) -> bytes:
    import zlib

    head, payload = data[: HEADER_SIZE - 4], data[HEADER_SIZE:]
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: d[: HEADER_SIZE + 20], "truncated"),
        (lambda d: d[:-4], "truncated"),
        (lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "checksum"),
        (lambda d: d[:6] + b"\0\0" + d[8:], "flags"),
        # a consistent file whose section lengths disagree (as a buggy writer would make)
        (
            lambda d: _rechecksum(
                d[: HEADER_SIZE + P] + struct.pack("<I", 10**6) + d[HEADER_SIZE + P + 4 :]
            ),
            "do not fit",
        ),
        (
            lambda d: _rechecksum(d[:HEADER_SIZE] + struct.pack("<d", -1.0) + d[HEADER_SIZE + 8 :]),
            "corrupt",
        ),  # fmt: skip
    ],
)
def test_a_damaged_residual_file_is_refused(codec, damage, words):
    model, X = codec
    data = aekit.compress(model, X[:50], step=2)
    with pytest.raises(CompressedFileError) as info:
        aekit.decompress(model, damage(data))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, AekitError)


def test_cli_step_one_is_lossless(tmp_path, capsys):
    run = aekit.train(
        "digits", out=tmp_path / "run", model="compress", epochs=2,
        model_options={"latent_dim": 16, "beta": 0.1},
    )  # fmt: skip
    f, report = tmp_path / "x.aek", tmp_path / "r.json"
    argv = ["compress", str(run.out), "--data", "digits", "--limit", "30", "--step", "1"]
    assert main([*argv, "--out", str(f), "--json", str(report)]) == 0
    stats = json.loads(report.read_text())
    assert stats["step"] == 1 and stats["max_abs_error"] == 0 and stats["bytes"] == f.stat().st_size
    assert "lossless" in capsys.readouterr().out
    assert main(["decompress", str(run.out), str(f), "--out", str(tmp_path / "x.npy")]) == 0
    X = aekit.load_dataset("digits", limit=30).X
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), X)
    assert main([*argv[:-1], "0", "--out", str(tmp_path / "y.aek")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error:") and "step" in err and err.count("\n") == 1
    assert not (tmp_path / "y.aek").exists()
