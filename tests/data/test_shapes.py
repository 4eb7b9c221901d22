"""Images in Python as they come (issue 21 point 2): (N, H, W), (N, C, H, W) and rows, given
back in the shape they came in, through the one helper of aekit.data.shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.data.shapes import Layout, as_rows
from aekit.errors import CompressedFileError, DataError
from aekit.nn import build_model
from aekit.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer


def test_as_rows_folds_images_and_unfold_gives_them_back():
    X = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    rows, layout = as_rows(X, width=12, image_shape=(1, 3, 4))
    assert rows.shape == (2, 12) and layout == Layout((3, 4))
    np.testing.assert_array_equal(layout.unfold(rows), X)
    assert layout.unfold(np.zeros((2, 5))).shape == (2, 5)  # codes are never folded
    rows4, layout4 = as_rows(X[:, None], width=12, image_shape=(1, 3, 4))
    assert layout4.unfold(rows4).shape == (2, 1, 3, 4)
    flat, layout2 = as_rows(X.reshape(2, 12), width=12, image_shape=(1, 3, 4))
    assert flat.shape == (2, 12) and layout2.unfold(flat).shape == (2, 12)
    t, _ = as_rows(torch.as_tensor(X), width=12)  # a tensor stays a tensor
    assert torch.is_tensor(t) and t.shape == (2, 12)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((2, 3, 5), ["(2, 3, 5)", "(n, 12), (n, 3, 4) or (n, 1, 3, 4)"]),
        ((2, 2, 3, 4), ["(2, 2, 3, 4)", "(n, 1, 3, 4)"]),
        ((2, 3, 4, 1), ["(2, 3, 4, 1)", "X.transpose(0, 3, 1, 2)"]),
        ((2, 4, 3), ["(2, 4, 3)", "(n, 3, 4)"]),  # 12 values, but not the model's image
        ((2, 13), ["(2, 13)", "(n, 12)"]),
        ((12,), ["(12,)", "(n, 12)"]),
    ],
)
def test_as_rows_refuses_other_shapes_in_one_line_naming_both(shape, words):
    with pytest.raises(DataError) as e:
        as_rows(np.zeros(shape), width=12, image_shape=(1, 3, 4))
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_model_of_rows_takes_any_image_of_its_width():
    model = build_model("dense", 12, latent_dim=2)
    assert model.reconstruct_numpy(np.zeros((2, 3, 4), np.float32)).shape == (2, 3, 4)
    with pytest.raises(DataError, match=r"\(2, 3, 5\).*expects \(n, 12\)"):
        model.encode_numpy(np.zeros((2, 3, 5), np.float32))
    Z = model.encode_numpy(np.zeros((2, 12), np.float32))
    with pytest.raises(DataError, match="has no image shape"):
        model.decode_numpy(Z, shape="image")
    assert model.decode_numpy(Z, shape=(3, 4)).shape == (2, 3, 4)


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A dense run trained for one epoch on 600 MNIST images, and 50 test images (N, 28, 28)."""
    from conftest import shared_data_dir

    data_dir = shared_data_dir()
    if data_dir is None:
        pytest.skip("real data not found: set AEKIT_DATA or place shared/data beside the checkout")
    out = tmp_path_factory.mktemp("mnist") / "run"
    aekit.train("mnist", out=out, data_dir=data_dir, limit=600, epochs=1, device="cpu")
    ds = aekit.load_dataset("mnist", data_dir=data_dir, split="test", limit=50)
    return out, ds.X.reshape(50, 28, 28)


def test_a_loaded_mnist_model_takes_images_and_gives_them_back_in_their_shape(mnist_run):
    run, images = mnist_run  # (50, 28, 28) raw 0..255
    model = aekit.load(run)
    rows = images.reshape(50, 784)
    flat = model.reconstruct_numpy(rows)
    assert flat.shape == (50, 784)
    out3 = model.reconstruct_numpy(images)  # refused before: "the model expects (n, 784)"
    assert out3.shape == (50, 28, 28)
    out4 = model.reconstruct_numpy(images[:, None])
    assert out4.shape == (50, 1, 28, 28)
    np.testing.assert_array_equal(out3.reshape(50, 784), flat)
    np.testing.assert_array_equal(out4.reshape(50, 784), flat)
    Z = model.encode_numpy(images)
    assert Z.shape == (50, model.config.latent_dim)
    np.testing.assert_array_equal(Z, model.encode_numpy(rows))
    np.testing.assert_array_equal(Z, model.encode_numpy(images[:, None]))
    assert model.decode_numpy(Z).shape == (50, 784)  # rows by default: codes carry no shape
    np.testing.assert_array_equal(model.decode_numpy(Z, shape="image").reshape(50, 784), flat)
    assert model.decode_numpy(Z, shape=(28, 28)).shape == (50, 28, 28)
    for bad, named in [((50, 27, 28), "(50, 27, 28)"), ((50, 3, 28, 28), "(50, 3, 28, 28)")]:
        with pytest.raises(DataError, match=r"expects \(n, 784\), \(n, 28, 28\)") as e:
            model.reconstruct_numpy(np.zeros(bad, np.float32))
        assert named in str(e.value)
    with pytest.raises(DataError, match=r"shape=\(1, 28, 27\) does not fit"):
        model.decode_numpy(Z, shape=(1, 28, 27))
    np.testing.assert_array_equal(aekit.reconstruct(run, images, device="cpu"), out3)
    assert aekit.reconstruct(run, rows, device="cpu").shape == (50, 784)


def test_compress_gives_images_back_in_the_shape_they_came_in():
    from test_compression import _codec

    model, X = _codec(epochs=2)  # digits (1797, 64), images (1, 8, 8)
    X = X[:100]
    flat = aekit.decompress(model, aekit.compress(model, X))
    assert flat.shape == (100, 64)
    for shape in [(100, 8, 8), (100, 1, 8, 8)]:
        data = aekit.compress(model, X.reshape(shape))
        assert data[52:] == aekit.compress(model, X)[52:]  # the same code, another header
        out = aekit.decompress(model, data)
        assert out.shape == shape
        np.testing.assert_array_equal(out.reshape(100, 64), flat)
        lossless = aekit.decompress(model, aekit.compress(model, X.reshape(shape), step=1.0))
        assert lossless.shape == shape and np.array_equal(lossless, X.reshape(shape))
    with pytest.raises(DataError, match=r"\(100, 8, 9\).*\(n, 1, 8, 8\)"):
        aekit.compress(model, np.zeros((100, 8, 9), np.float32))


def test_a_files_layout_flags_are_checked():
    from test_compression import _codec

    model, X = _codec(epochs=1)
    data = aekit.compress(model, X[:10].reshape(10, 8, 8))
    assert data[6] == 0b010  # flag bits 1-2: (N, H, W)
    for flags in (0b110, 0b1000):  # a fourth layout, an unknown bit
        bad = data[:6] + bytes([flags, 0]) + data[8:]
        with pytest.raises(CompressedFileError, match="flags"):
            aekit.decompress(model, bad)


def test_estimators_take_images_of_their_image_shape():
    from sklearn.datasets import load_digits

    X = (load_digits().data[:300] / 16.0).astype(np.float32)
    images = X.reshape(300, 8, 8)
    params = dict(image_shape=(1, 8, 8), max_iter=2, random_state=0, device="cpu")
    ae = AutoencoderTransformer(latent_dim=4, **params).fit(images)
    assert ae.n_features_in_ == 64
    Z = ae.transform(images[:, None])
    assert Z.shape == (300, 4)
    np.testing.assert_array_equal(Z, ae.transform(X))
    assert ae.score(images) == ae.score(X)
    with pytest.raises(DataError, match=r"\(300, 2, 8, 8\).*\(n, 1, 8, 8\)"):
        ae.transform(np.zeros((300, 2, 8, 8)))
    det = AutoencoderOutlierDetector(n_estimators=2, **params).fit(images)
    np.testing.assert_array_equal(det.score_samples(images[:, None]), det.score_samples(X))
    assert det.feature_errors(images).shape == (300, 8, 8)
    assert det.feature_errors(images[:, None]).shape == (300, 1, 8, 8)
    assert det.feature_errors(X).shape == (300, 64)
    with pytest.raises(DataError, match=r"\(300, 8, 7\)"):
        AutoencoderTransformer(**params).fit(np.zeros((300, 8, 7)))
