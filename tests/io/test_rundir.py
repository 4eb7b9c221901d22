"""Issue 25, point 2: the Run object that alone names a run directory's files (aekit.io.rundir),
and io/ importing nothing of training/."""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import pytest

import aekit
from aekit.errors import FileSystemError, ModelFileError
from aekit.io import files
from aekit.io.rundir import Run
from aekit.io.state import TrainState

SRC = Path(aekit.__file__).parent
FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"


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
