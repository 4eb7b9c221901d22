"""ONNX export: every preset's encoder, decoder and autoencoder run in onnxruntime as in PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.data import Scaler
from aekit.io.export import export_onnx, part_paths
from aekit.nn import MODELS, build_model

ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install aekit[export])"
)
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install aekit[export])")


def _model(name: str):
    torch.manual_seed(0)
    kw = {"latent_dim": 5, "image_shape": (1, 8, 8)}
    if "channels" in MODELS[name].defaults:
        kw["channels"] = (4, 8)
    elif MODELS[name].defaults.get("hidden", (128,)) != ():
        kw["hidden"] = (24,)
    model = build_model(name, 64, **kw).eval()
    X = np.random.default_rng(0).uniform(0, 16, size=(50, 64)).astype(np.float32)
    model.scaler = Scaler.fit(X, "minmax")  # per-column offsets and scales in the graph
    return model, X


def _run(path, array: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: array})[0]


@pytest.mark.parametrize("name", sorted(n for n, s in MODELS.items() if s.cls.has_code))
def test_every_part_of_every_preset_matches_pytorch_in_onnxruntime(name, tmp_path):
    model, X = _model(name)
    paths = export_onnx(model, tmp_path / "m.onnx", {"name": name})
    Z = model.encode_numpy(X)  # raw units in: the scaler is applied, as in the graph
    for rows in (1, 7, 50):  # the batch axis is dynamic
        x = X[:rows]
        np.testing.assert_allclose(_run(paths["encoder"], x), Z[:rows], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            _run(paths["autoencoder"], x), model.reconstruct_numpy(x), rtol=1e-5, atol=1e-4
        )
        np.testing.assert_allclose(
            _run(paths["decoder"], Z[:rows]), model.decode_numpy(Z[:rows]), rtol=1e-5, atol=1e-4
        )
    meta = {p.key: p.value for p in onnx.load(paths["autoencoder"]).metadata_props}
    assert json.loads(meta["aekit"])["name"] == name


def test_cli_export_writes_three_graphs_from_a_run(tmp_path, capsys, digits01):
    run = aekit.train(digits01 * 16, out=tmp_path / "r", epochs=1)
    out = tmp_path / "model.onnx"
    assert main(["export", str(run.out), "--format", "onnx", "--out", str(out)]) == 0
    paths = part_paths(out)
    assert all(p.is_file() for p in paths.values())
    model = aekit.load(run.out)
    x = (digits01[:5] * 16).astype(np.float32)
    np.testing.assert_allclose(
        _run(paths["autoencoder"], x), model.reconstruct_numpy(x), rtol=1e-5, atol=1e-4
    )
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(meta["aekit"])["scaler"]["kind"] == "minmax"


def test_export_refuses_a_bad_name_before_reading_the_run(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err
