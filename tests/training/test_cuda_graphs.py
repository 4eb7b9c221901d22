"""The CUDA-graph switch and its fallbacks (issue 27, point 3), checked on the CPU.

A captured step is replayed only after its first replay has been held against an eager step on
the same batch from the same state. On a machine without CUDA the capture itself cannot run, so
these tests force the capture path of :class:`TorchStrategy` on the CPU with stand-in graphs (a
faithful one that computes the eager step, a broken one that computes it on another batch) and a
capture that raises; each must end with the weights of a run that never captured.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import aekit.training.strategy as strategy_module
from aekit.cli import _warning_line, main
from aekit.errors import ConfigError
from aekit.nn import build_model
from aekit.training import TrainConfig, fit
from aekit.training.strategy import TorchStrategy

CONFIG = dict(epochs=5, batch_size=48)  # 200 rows = 4 x 48 + 8: two batch shapes


class _StandInGraph:
    """What a captured step offers the strategy, computed eagerly: ``faithful`` replays the
    step on the batch it is given, otherwise on the batch turned upside down (a stale input)."""

    def __init__(self, strategy, faithful: bool) -> None:
        self.strategy, self.faithful, self.checked, self.replays = strategy, faithful, False, 0

    def valid(self) -> bool:
        return True

    def replay(self, xb: torch.Tensor) -> None:
        self.replays += 1
        self.strategy._eager_step(xb if self.faithful else 1.0 - xb)


class _ForcedCapture(TorchStrategy):
    """The CUDA path's bookkeeping on the CPU: every shape is 'captured' after the warm-up."""

    def __init__(self, faithful: bool) -> None:
        super().__init__("cpu", cuda_graphs=True)
        self.faithful, self.made = faithful, []

    def setup(self, model, optimizer, config):
        optimizer = super().setup(model, optimizer, config)
        self.capture = True
        return optimizer

    def _capture(self, xb):
        graph = _StandInGraph(self, self.faithful)
        self.made.append(graph)
        return graph


def _model(name: str):
    torch.manual_seed(0)
    return build_model(name, 64, hidden=(32,), latent_dim=6)


def _fit(name: str, digits01, strategy=None, **kw):
    model = _model(name)
    torch.manual_seed(1)  # the corruption's draws
    state = fit(model, digits01, config=TrainConfig(**CONFIG), strategy=strategy, **kw)
    weights = [p.detach().clone() for p in model.parameters()]
    return [r["train_loss"] for r in state.history], weights


def _fit_watched(name: str, digits01, strategy):
    """``_fit`` with a given strategy, and the RuntimeWarnings it raised."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        curve, weights = _fit(name, digits01, strategy=strategy)
    said = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    return curve, weights, said


@pytest.mark.parametrize("name", ["dense", "denoising"])  # deterministic, and with noise
def test_a_faithful_replay_is_kept_and_changes_nothing(digits01, name):
    eager_curve, eager_weights = _fit(name, digits01, cuda_graphs=False)
    forced = _ForcedCapture(faithful=True)
    curve, weights, said = _fit_watched(name, digits01, forced)
    assert said == []
    assert len(forced.made) == 2 and all(g.checked for g in forced.made)
    assert sum(g.replays for g in forced.made) > 2  # replayed after the check, not dropped
    assert curve == eager_curve
    for a, b in zip(weights, eager_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["dense", "denoising"])
def test_a_replay_with_another_loss_falls_back_to_eager_steps(digits01, name):
    eager_curve, eager_weights = _fit(name, digits01, cuda_graphs=False)
    forced = _ForcedCapture(faithful=False)
    curve, weights, said = _fit_watched(name, digits01, forced)
    assert len(said) == 1 and "replayed to a loss of" in said[0] and "\n" not in said[0]
    assert [g.replays for g in forced.made] == [1]  # the checked replay only, then eager
    assert not forced.capture
    assert curve == eager_curve  # the eager step's result was kept
    for a, b in zip(weights, eager_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_capture_that_fails_falls_back_once(digits01, monkeypatch):
    def fail(strategy, xb):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(strategy_module, "CapturedStep", fail)

    class Failing(_ForcedCapture):
        _capture = TorchStrategy._capture  # the real one, whose capture raises

    eager_curve, eager_weights = _fit("dense", digits01, cuda_graphs=False)
    curve, weights, said = _fit_watched("dense", digits01, Failing(faithful=True))
    assert len(said) == 1 and "could not be captured" in said[0] and "not permitted" in said[0]
    assert curve == eager_curve
    for a, b in zip(weights, eager_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_switch_reaches_the_strategy():
    model = _model("dense")
    strategy = strategy_module.TorchStrategy("cpu", cuda_graphs=False)
    fit(model, np.zeros((8, 64), np.float32), config=TrainConfig(epochs=1), strategy=strategy)
    assert strategy.capture is False  # never on the CPU, and never when switched off
    on_cpu = strategy_module.TorchStrategy("cpu", cuda_graphs=True)
    fit(model, np.zeros((8, 64), np.float32), config=TrainConfig(epochs=1), strategy=on_cpu)
    assert on_cpu.capture is False and on_cpu.graphs == {}


def test_train_config_takes_only_a_boolean():
    assert TrainConfig(cuda_graphs=False).cuda_graphs is False
    with pytest.raises(ConfigError, match="cuda_graphs must be True or False"):
        TrainConfig(cuda_graphs="off")


QUICK = ["--limit", "200", "--hidden", "16", "--latent-dim", "3", "--quiet", "--init", "random"]


def test_cli_cuda_graphs_is_stored_and_may_change_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--cuda-graphs", "off", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["cuda_graphs"] is False
    argv = ["train", "--resume", "--epochs", "2", "--cuda-graphs", "on", "--out", str(out)]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["cuda_graphs"] is True and cfg["training"]["epochs"] == 2
    capsys.readouterr()
    assert main(["train", *QUICK, "--cuda-graphs", "maybe", "--out", str(tmp_path / "x")]) == 2
    assert "--cuda-graphs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_run_written_before_the_switch_resumes(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    del cfg["training"]["cuda_graphs"]  # config.json as earlier versions wrote it
    (out / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["cuda_graphs"] is True


def test_the_cli_prints_a_warning_as_one_line(capsys):
    _warning_line(RuntimeWarning("the graph replayed to another loss"), RuntimeWarning, "f", 1)
    assert capsys.readouterr().err == "aekit: warning: the graph replayed to another loss\n"
