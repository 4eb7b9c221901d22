"""Issue 25, point 1: one spine for a run (RunSpec -> fit_run): a new, a resumed and a streamed
run hand one spec to fit_run, and resume's checks are a comparison of records (the Run object's
tests are tests/io/test_rundir.py, the strategies' tests/training/test_engines.py)."""

from __future__ import annotations

import numpy as np
import pytest

import aekit
from aekit.apps import fitting
from aekit.apps import train as train_module
from aekit.apps.resume import CHANGEABLE, changed_fields, requested_records, run_records
from aekit.errors import ConfigError
from aekit.training import Strategy

QUICK = {"limit": 120, "epochs": 2, "init": "random", "model_options": {"hidden": (8,)}}


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
