"""Devices and precision: choosing a device, checkpoints that move between devices, and the
CUDA paths (captured steps, CPU-vs-GPU agreement), which skip with the reason on CPU-only
machines such as CI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import CUDA
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import aekit
from aekit.cli import main
from aekit.errors import ConfigError
from aekit.io import checkpoint as ckpt
from aekit.nn import build_model
from aekit.sklearn import AutoencoderTransformer
from aekit.training import Callback, TrainConfig, fit, make_optimizer, resolve_device

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


def small(name="dense", seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(name, 64, **{"hidden": (32,), "latent_dim": 6, **kw})


def test_auto_is_cuda_when_available_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:x", ""])
def test_unknown_devices_are_refused(name):
    with pytest.raises(ConfigError, match="device"):
        resolve_device(name)


@NO_CUDA
def test_cuda_on_a_machine_without_it_says_so():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        fit(small(), np.zeros((8, 64), np.float32), device="cuda:0")


@CUDA
def test_a_cuda_index_that_does_not_exist_is_refused():
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@NO_CUDA
@pytest.mark.parametrize("command", ["train", "eval", "encode", "reconstruct"])
def test_every_command_refuses_a_missing_device_in_one_line(command, tmp_path, capsys):
    out = tmp_path / "r"
    if command == "train":
        argv = ["train", "--epochs", "1", "--out", str(out), "--device", "cuda", "--quiet"]
    else:
        assert main(["train", "--epochs", "1", "--limit", "100", "--out", str(out), "--quiet"]) == 0
        argv = [command, str(out), "--device", "cuda"]
        if command != "eval":
            argv += ["--out", str(tmp_path / "z.npy")]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0]
    if command == "train":
        assert not out.exists()  # refused before anything was written
    else:
        assert not (tmp_path / "z.npy").exists()


def test_tf32_is_a_cuda_precision(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("checks a machine without CUDA")
    assert main(["train", "--precision", "tf32", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "tf32" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bf16_trains_and_stays_near_fp32(digits01, device):
    """Autocast to bfloat16: the loss falls and ends within a few percent of fp32's."""
    config = TrainConfig(epochs=8, batch_size=32)
    runs = {}
    for precision in ("fp32", "bf16"):
        state = fit(small(), digits01, config=config, device=device, precision=precision)
        runs[precision] = [r["train_loss"] for r in state.history]
    assert runs["bf16"][-1] < 0.8 * runs["bf16"][0]
    assert runs["bf16"][-1] == pytest.approx(runs["fp32"][-1], rel=0.05)
    assert runs["bf16"] != runs["fp32"]  # it did compute in bfloat16


def test_precision_is_stored_with_the_run(tmp_path):
    out = tmp_path / "r"
    argv = ["train", "--epochs", "1", "--limit", "100", "--precision", "bf16", "--quiet"]
    assert main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["precision"] == "bf16"


def test_estimator_trains_and_transforms_on_the_device(digits01, device):
    est = AutoencoderTransformer(latent_dim=3, max_iter=3, random_state=0, device=device)
    Z = est.fit_transform(digits01)
    assert next(est.model_.parameters()).device.type == device
    assert Z.shape == (200, 3) and np.isfinite(Z).all() and isinstance(Z, np.ndarray)
    assert est.score(digits01) < 0


def test_estimator_refuses_a_device_that_is_not_a_name(digits01):
    with pytest.raises(ConfigError, match="device"):
        AutoencoderTransformer(device=3).fit(digits01)


def test_a_gpu_checkpoint_resumes_on_the_cpu(digits01, tmp_path):
    """A CUDA run's file has a capturable Adam and the CUDA generator's state; the CPU run
    resuming it keeps its own optimiser flags, ignores that state, and continues exactly."""
    config = TrainConfig(epochs=4, batch_size=32, seed=2)
    ref = small()
    fit(ref, digits01, config=config, device="cpu")

    model = small()
    opt = make_optimizer("adam", model.parameters(), 1e-3)
    half = TrainConfig(epochs=2, batch_size=32, seed=2)
    state = fit(model, digits01, config=half, optimizer=opt, device="cpu")
    path = tmp_path / "checkpoint.safetensors"
    ckpt.save_checkpoint(path, model, opt, state)
    # make it look as a CUDA run writes it
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    groups = json.loads(meta["param_groups"])
    for g in groups:
        g["capturable"] = True
    meta["param_groups"] = json.dumps(groups)
    tensors["rng.cuda"] = torch.zeros(16, dtype=torch.uint8)
    meta[ckpt.CHECKSUM_KEY] = ckpt.tensors_digest(tensors)  # as written with those tensors
    save_file(tensors, path, metadata=meta)

    resumed = small(seed=9)
    opt2 = make_optimizer("adam", resumed.parameters(), 1e-3)
    state2 = ckpt.load_checkpoint(path, resumed, opt2)
    assert opt2.param_groups[0]["capturable"] is False
    fit(resumed, digits01, config=config, optimizer=opt2, state=state2, device="cpu")
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_checkpoints_hold_cpu_tensors_only(digits01, tmp_path, device):
    run = aekit.train(digits01, out=tmp_path / "r", epochs=2, device=device)
    with safe_open(str(tmp_path / "r" / "checkpoint.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert ("rng.cuda" in keys) == (device == "cuda")
    assert next(run.model.parameters()).device.type == "cpu"  # the job returns a CPU model
    assert aekit.load(tmp_path / "r").encode_numpy(digits01).shape == (200, 16)


# ---- CUDA only ---------------------------------------------------------------------------


@CUDA
@pytest.mark.parametrize("other", ["cpu", "cuda"])
def test_a_run_moves_between_cpu_and_gpu(digits01, tmp_path, other):
    first = "cuda" if other == "cpu" else "cpu"
    aekit.train(digits01, out=tmp_path / "r", epochs=2, device=first, seed=1)
    cfg = ckpt.read_config(tmp_path / "r")
    assert "device" not in cfg["training"]  # where a run trained is not part of the run
    data = tmp_path / "x.npy"
    np.save(data, digits01)
    cfg["data"]["source"] = str(data)
    ckpt.write_json(tmp_path / "r" / "config.json", cfg)
    run = aekit.train(out=tmp_path / "r", resume=True, epochs=4, device=other)
    assert run.state.epoch == 4
    assert all(np.isfinite(r["train_loss"]) for r in run.state.history)


@CUDA
@pytest.mark.parametrize("name", ["dense", "tied", "conv"])
def test_cpu_and_gpu_loss_curves_agree_in_the_first_epochs(digits01, name):
    kw = {"image_shape": (1, 8, 8), "channels": (4, 8)} if name == "conv" else {}
    curves = []
    for device in ("cpu", "cuda"):
        model = small(name, **kw)
        state = fit(model, digits01, config=TrainConfig(epochs=3, batch_size=32), device=device)
        curves.append([r["train_loss"] for r in state.history])
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-4)


@CUDA
@pytest.mark.parametrize(
    "name, rtol",
    # deterministic objectives: the same kernels, so the same numbers; stochastic ones draw
    # from the same generator, whose graph-safe offsets need not give the eager draws
    [("dense", 1e-5), ("conv", 1e-5), ("vae", 2e-2), ("denoising", 2e-2), ("conv-vae", 2e-2)],
)
def test_a_captured_step_computes_what_the_eager_step_computes(digits01, name, rtol):
    kw = {"image_shape": (1, 8, 8), "channels": (4, 8)} if name.startswith("conv") else {}
    runs = []
    for graphs in (False, True):
        model = small(name, **kw)
        torch.cuda.manual_seed(0)
        state = fit(
            model,
            digits01,
            config=TrainConfig(epochs=4, batch_size=48),  # 200 = 4 x 48 + 8: two shapes
            device="cuda",
            cuda_graphs=graphs,
        )
        runs.append([r["train_loss"] for r in state.history])
    np.testing.assert_allclose(runs[0], runs[1], rtol=rtol)
    assert runs[1][-1] < runs[1][0]


@CUDA
def test_a_changed_learning_rate_reaches_the_captured_step(digits01):
    class Halve(Callback):
        def on_epoch_start(self, loop, epoch):
            if epoch == 2:
                for group in loop.optimizer.param_groups:
                    group["lr"] = group["lr"] / 10

    runs = []
    for graphs in (False, True):
        state = fit(
            small(),
            digits01,
            config=TrainConfig(epochs=5, batch_size=32),
            device="cuda",
            cuda_graphs=graphs,
            callbacks=[Halve()],
        )
        runs.append([r["train_loss"] for r in state.history])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)
