"""Issue 25, point 1: the strategies' registry (aekit.training.engines) and the Strategy
protocol that every engine has."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aekit
from aekit.errors import ConfigError
from aekit.training import ENGINES, STRATEGIES, Strategy, TrainConfig, make_strategy

SRC = Path(aekit.__file__).parent


# ---- the strategies ---------------------------------------------------------------------------


def test_the_registry_holds_every_engine():
    assert tuple(STRATEGIES) == ENGINES
    for engine in ENGINES:
        strategy = make_strategy(TrainConfig(engine=engine), "cpu")
        assert isinstance(strategy, Strategy), engine


def _called_on_strategy(path: Path) -> set[str]:
    """Names called or read on ``strategy`` / ``loop.strategy`` / ``self.strategy``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            if name == "strategy":
                found.add(node.attr)
    return found


def test_the_protocol_names_every_method_the_loop_and_its_callbacks_call():
    called = set()
    for name in ("loop.py", "callbacks.py", "loggers.py", "writer.py"):
        called |= _called_on_strategy(SRC / "training" / name)
    protocol = {n for n in vars(Strategy) if not n.startswith("_")}
    attributes = {"device"}  # read with getattr(..., "cpu"): the NumPy engine has none
    assert called - attributes <= protocol, called - attributes - protocol
    assert {"step", "evaluate", "running_loss", "setup"} <= called  # the scan sees the calls


def test_an_object_missing_a_method_is_not_a_strategy():
    from aekit.backends.numpy import NumpyStrategy

    class Partial(NumpyStrategy):
        running_loss = None  # the progress bar calls it

    assert isinstance(NumpyStrategy(), Strategy)
    assert not isinstance(object(), Strategy)
    assert not all(callable(getattr(Partial(), n, None)) for n in vars(Strategy) if n[0] != "_")


def test_a_numpy_strategy_refuses_a_gpu_in_one_line():
    with pytest.raises(ConfigError, match="NumPy engine runs on the CPU"):
        make_strategy(TrainConfig(engine="numpy"), "cuda")
