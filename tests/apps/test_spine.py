"""Issue 25, points 1-2: one spine for a run (RunSpec -> fit_run), the strategies' registry and
protocol, and the Run object that alone names a run directory's files."""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.apps import fitting
from aekit.apps import train as train_module
from aekit.apps.resume import CHANGEABLE, changed_fields, requested_records, run_records
from aekit.errors import ConfigError, FileSystemError, ModelFileError
from aekit.io import files
from aekit.io.rundir import Run
from aekit.io.state import TrainState
from aekit.training import ENGINES, STRATEGIES, Strategy, TrainConfig, make_strategy

SRC = Path(aekit.__file__).parent
FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
QUICK = {"limit": 120, "epochs": 2, "init": "random", "model_options": {"hidden": (8,)}}


# ---- the Run object ----------------------------------------------------------------------------


def test_run_names_every_file_a_run_directory_holds(tmp_path):
    aekit.train("digits", out=tmp_path / "r", limit=200, epochs=2, init="pca")
    aekit.fit_density(tmp_path / "r")
    names = {v for k, v in vars(Run).items() if k.isupper()}
    held = {p.name for p in (tmp_path / "r").iterdir()}
    held |= {p.name for p in (FIXTURES / "run").iterdir()}
    assert held - names == set(), "files of a run that Run does not name"
    run = Run(tmp_path / "r")
    assert run.config_file == tmp_path / "r" / "config.json"  # the format, as written since 0.1
    assert run.best_file.name == "model.safetensors"
    assert run.checkpoint_file.name == "checkpoint.safetensors"
    assert run.history_file.name == "metrics.jsonl" and run.start_file.name == "start.safetensors"
    files_ = ("config_file", "best_file", "start_file", "checkpoint_file", "history_file")
    files_ += ("summary_file", "density_file", "loss_figure", "reconstructions_figure")
    for prop in files_:
        assert getattr(run, prop).is_file(), prop


def test_run_reads_what_the_fixture_run_holds():
    """An old run directory (tests/fixtures/formats) reads through Run: config, history, best
    weights, the checkpoint's counters."""
    run = Run(FIXTURES / "run")
    cfg = run.read_config()
    history = run.read_history()
    assert cfg["model"]["name"] and len(history) >= 1 and "train_loss" in history[0]
    model = aekit.load(run.path)
    assert run.load_best(model) and not model.training
    import torch

    from aekit.training import make_optimizer

    opt = make_optimizer(cfg["training"]["optimizer"], model.parameters(), 1e-3)
    state = run.load_checkpoint(model, opt)
    assert isinstance(state, TrainState) and state.epoch == len(history)
    assert all(torch.isfinite(v).all() for v in run.read_best().values())


def test_run_refuses_a_folder_without_config_in_one_line(tmp_path):
    with pytest.raises(ModelFileError, match="is not an aekit run: no config.json") as e:
        Run(tmp_path).read_config()
    assert "\n" not in str(e.value)
    assert Run(tmp_path).read_history() == [] and Run(tmp_path).read_summary() is None
    assert not Run(tmp_path).holds_run() and not Run(tmp_path).load_best(_Model())


class _Model:
    def eval(self):
        return self


@pytest.mark.parametrize("what", ["config", "history", "summary", "best"])
def test_run_writes_atomically(tmp_path, monkeypatch, what):
    """A write that fails at its rename leaves the previous file whole and no temporary file."""
    import torch

    run = Run(tmp_path)
    write = {
        "config": lambda v: run.write_config({"v": v}),
        "history": lambda v: run.write_history([{"epoch": 1, "train_loss": float(v)}]),
        "summary": lambda v: run.write_summary({"v": v}),
        "best": lambda v: run.write_best({"w": torch.full((3,), float(v))}),
    }[what]
    path = {"config": run.config_file, "history": run.history_file,
            "summary": run.summary_file, "best": run.best_file}[what]  # fmt: skip
    write(1)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(FileSystemError, match=str(path.name)):
        write(2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no debris
    write(2)
    assert path.read_bytes() != before


def test_nothing_outside_io_spells_a_run_file_name():
    """Run alone names a run's files: no other module of src/ has them as string constants
    (docstrings and messages may mention them)."""
    names = {v for k, v in vars(Run).items() if k.isupper()}
    spelled = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "io" / "rundir.py":
            continue
        tree = ast.parse(path.read_text())
        docs = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docs:
                spelled.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    # a probe's output folder is not a run: it has its own reconstructions.png
    assert [s for s in spelled if not s.startswith("views/probe.py")] == []


def test_io_imports_nothing_of_training():
    for path in (SRC / "io").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("training", "backends")), path.name


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


# ---- one spine --------------------------------------------------------------------------------


def _specs(monkeypatch) -> list:
    seen = []
    real = train_module.fit_run

    def spy(spec, out, **kw):
        seen.append(spec)
        return real(spec, out, **kw)

    monkeypatch.setattr(train_module, "fit_run", spy)
    return seen


def test_new_resumed_and_streamed_runs_hand_one_spec_to_fit_run(tmp_path, monkeypatch, digits01):
    seen = _specs(monkeypatch)
    aekit.train(digits01, out=tmp_path / "a", **QUICK)
    aekit.train(digits01, out=tmp_path / "a", resume=True, epochs=3)
    np.save(tmp_path / "x.npy", digits01)
    aekit.train(tmp_path / "x.npy", out=tmp_path / "s", stream=True, epochs=1,
                model_options={"hidden": (8,)})  # fmt: skip
    assert [type(s) for s in seen] == [fitting.RunSpec] * 3
    new, resumed, streamed = seen
    assert new.records is not None and set(new.records) >= {"data", "training", "init"}
    assert resumed.records is None and resumed.restore and resumed.config.epochs == 3
    assert streamed.records["data"]["stream"] is True
    for spec in seen:
        assert isinstance(spec.strategy, Strategy) and spec.strategy is not None
    assert len({id(s.strategy) for s in seen}) == 3  # each run's own, built by its job


def test_resume_refuses_a_changed_field_in_one_line(tmp_path, digits01):
    out = tmp_path / "r"
    aekit.train(digits01, out=out, **QUICK)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError) as e:
        aekit.train(out=out, resume=True, batch_size=7, epochs=4)
    line = str(e.value)
    assert "\n" not in line and "cannot change batch_size (the run has 128, not 7)" in line
    assert "epochs" not in line  # epochs may change
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written


def test_the_field_comparison():
    cfg = {
        "model": {"name": "dense", "config": {"latent_dim": 2, "hidden": [8]}},
        "training": {"epochs": 2, "batch_size": 128, "seed": 0},  # a run before "engine"
        "data": {"limit": 120, "val_fraction": 0.1, "image_shape": [1, 8, 8]},
        "scaler": {"kind": "image"},
    }
    stored = run_records(cfg)

    def ask(**kw):
        args = dict(model=None, model_options={}, train_options={}, limit=None,
                    val_fraction=None, image_shape=None, scale=None)  # fmt: skip
        return changed_fields(stored, requested_records(**{**args, **kw}), CHANGEABLE)

    assert ask() == []
    assert ask(model="dense", model_options={"hidden": (8,), "output_activation": "auto"}) == []
    assert ask(train_options={"epochs": 9, "lr": 0.1, "engine": "torch"}) == []  # default
    assert ask(image_shape=(1, 8, 8), limit=120, scale="image") == []
    assert ask(train_options={"engine": "numpy"}) == ["engine (the run has torch, not numpy)"]
    assert ask(model="tied") == ["model (the run has dense, not tied)"]
    assert ask(model_options={"hidden": (16,)}) == ["hidden (the run has [8], not [16])"]
    assert ask(limit=100, scale="minmax") == [
        "limit (the run has 120, not 100)",
        "scale (the run has image, not minmax)",
    ]
