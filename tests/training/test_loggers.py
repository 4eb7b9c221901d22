"""TensorBoard and MLflow loggers (aekit.training.loggers): what they log is metrics.jsonl."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.errors import ConfigError
from aekit.training import Callback
from aekit.training import loggers as loggers_module
from aekit.training.loggers import TensorBoardLogger, flat_params, scalar_tag

QUICK = ["--data", "digits", "--limit", "300", "--hidden", "32", "--latent-dim", "4", "--quiet"]


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _check_scalars(acc, rows: list[dict]) -> None:
    """Every value of every epoch of metrics.jsonl is a scalar at step = epoch (float32)."""
    keys = {k for row in rows for k in row if k != "epoch"}
    assert {scalar_tag(k) for k in keys} <= set(acc.Tags()["scalars"])
    for key in keys:
        events = acc.Scalars(scalar_tag(key))
        assert [e.step for e in events] == [row["epoch"] for row in rows], key
        assert [e.value for e in events] == pytest.approx([row[key] for row in rows], rel=1e-6)


def test_tensorboard_scalars_and_images_continue_on_resume(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (aekit[tensorboard])")
    run, tb = tmp_path / "run", tmp_path / "tb"
    args = [*QUICK, "--model", "vae", "--out", str(run), "--tensorboard", str(tb)]
    assert main(["train", *args, "--epochs", "2"]) == 0
    rows = _metrics(run)
    assert {"train_recon", "train_kl", "val_loss"} <= set(rows[0])  # the VAE's terms
    acc = _events(tb)
    _check_scalars(acc, rows)
    images = acc.Images("reconstructions")  # digits are 8 x 8 images: inputs over outputs
    assert [e.step for e in images] == [1, 2]
    assert (images[0].width, images[0].height) == (8 * 9 - 1, 2 * 9 - 1)
    # --resume writes into the same folder with step = epoch: one curve of three epochs
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--quiet",
                 "--tensorboard", str(tb)]) == 0  # fmt: skip
    rows = _metrics(run)
    assert len(rows) == 3
    acc = _events(tb)
    _check_scalars(acc, rows)
    assert [e.step for e in acc.Images("reconstructions")] == [1, 2, 3]


def test_tensorboard_refuses_a_folder_of_another_run(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (aekit[tensorboard])")
    tb = tmp_path / "tb"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(tmp_path / "a"),
                 "--tensorboard", str(tb)]) == 0  # fmt: skip
    capsys.readouterr()
    other = tmp_path / "b"
    assert (
        main(["train", *QUICK, "--epochs", "1", "--out", str(other), "--tensorboard", str(tb)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"aekit: error: --tensorboard {tb} already holds the events of another")
    assert len(err.splitlines()) == 1 and not other.exists()


def test_tensorboard_added_on_resume_logs_the_earlier_epochs_first(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (aekit[tensorboard])")
    run, tb = tmp_path / "run", tmp_path / "tb"
    aekit.train("digits", out=run, limit=300, epochs=2, model_options={"hidden": (32,)})
    result = aekit.train(out=run, resume=True, epochs=3, callbacks=[TensorBoardLogger(tb)])
    assert result.state.epoch == 3
    _check_scalars(_events(tb), _metrics(run))


def test_tensorboard_writes_nothing_outside_rank_0(tmp_path, monkeypatch):
    monkeypatch.setattr(loggers_module, "is_writer", lambda: False)
    monkeypatch.setattr(loggers_module, "require", lambda *a: None)  # no package needed
    tb = tmp_path / "tb"
    logger = TensorBoardLogger(tb)
    aekit.train("digits", out=tmp_path / "run", limit=300, epochs=1, callbacks=[logger])
    assert not tb.exists()


def test_a_failing_backend_warns_once_and_training_goes_on(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (aekit[tensorboard])")
    from torch.utils.tensorboard import SummaryWriter

    class Broken(TensorBoardLogger):
        def _open(self, first_step):
            self.writer = SummaryWriter(str(self.log_dir))

            def fail(*args, **kwargs):
                raise OSError(28, "No space left on device")

            self.writer.add_scalar = fail

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = aekit.train(
            "digits", out=tmp_path / "run", limit=300, epochs=2, callbacks=[Broken(tmp_path / "tb")]
        )
    said = [str(w.message) for w in seen if "--tensorboard" in str(w.message)]
    assert len(said) == 1 and "writing scalars failed" in said[0] and "training goes on" in said[0]
    assert result.state.epoch == 2


def test_mlflow_params_metrics_artifacts_and_resume(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (aekit[mlflow])")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for a database
    monkeypatch.chdir(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    run = tmp_path / "run"
    args = [*QUICK, "--out", str(run), "--mlflow-uri", uri, "--mlflow-experiment", "t"]
    assert main(["train", *args, "--epochs", "2"]) == 0
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--quiet",
                 "--mlflow-uri", uri, "--mlflow-experiment", "t"]) == 0  # fmt: skip
    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert len(found) == 1  # the resume continued the same MLflow run
    info, data = found[0].info, found[0].data
    assert info.status == "FINISHED" and data.tags["aekit.run_dir"] == str(run.resolve())
    cfg = json.loads((run / "config.json").read_text())
    assert data.params["training.lr"] == "0.001" and data.params["model.name"] == "dense"
    assert data.params["model.config.hidden"] == "[32]"
    assert data.params["training.epochs"] == "2" and data.tags["resumed.training.epochs"] == "3"
    assert cfg["training"]["epochs"] == 3
    rows = _metrics(run)
    for key in {k for row in rows for k in row if k != "epoch"}:
        history = sorted(client.get_metric_history(info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2, 3], key
        assert [m.value for m in history] == pytest.approx([row[key] for row in rows]), key
    names = {a.path for a in client.list_artifacts(info.run_id)}
    assert {"config.json", "metrics.jsonl", "model.safetensors", "summary.json"} <= names
    assert ".lock" not in names


def test_mlflow_bad_uri_is_one_line_before_anything_is_written(tmp_path, capsys):
    pytest.importorskip("mlflow", reason="mlflow is not installed (aekit[mlflow])")
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run), "--mlflow-uri", "nosuch://here"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aekit: error: --mlflow: cannot log to nosuch://here: ")
    assert len(err.splitlines()) == 1 and not run.exists()


@pytest.mark.parametrize(
    "flags, package, extra",
    [
        (["--tensorboard", "tb"], "tensorboard", "tensorboard"),
        (["--mlflow"], "mlflow", "mlflow"),
        (["--mlflow-uri", "sqlite:///x.db"], "mlflow", "mlflow"),
    ],
)
def test_a_missing_package_is_one_line_and_nothing_is_written(
    tmp_path, monkeypatch, capsys, flags, package, extra
):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    assert main(["train", *QUICK, "--out", "run", *flags]) == 2
    err = capsys.readouterr().err.strip()
    flag = flags[0] if package == "tensorboard" else "--mlflow"
    assert err == f"aekit: error: {flag} needs {package}: pip install aekit[{extra}]"
    assert list(tmp_path.iterdir()) == []


def test_extra_callbacks_see_every_epoch_of_new_and_resumed_runs(tmp_path):
    class Epochs(Callback):
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, loop, record, improved):
            self.seen.append(record["epoch"])

    cb = Epochs()
    aekit.train("digits", out=tmp_path / "run", limit=300, epochs=2, callbacks=[cb])
    aekit.train(out=tmp_path / "run", resume=True, epochs=4, callbacks=[cb])
    assert cb.seen == [1, 2, 3, 4]
    rows = tmp_path / "rows.npy"  # streamed runs take them too
    np.save(rows, np.random.default_rng(0).random((256, 8), dtype=np.float32))
    cb.seen = []
    aekit.train(rows, out=tmp_path / "streamed", stream=True, epochs=2, callbacks=[cb])
    assert cb.seen == [1, 2]
    with pytest.raises(ConfigError, match="callbacks takes aekit.training.Callback objects"):
        aekit.train("digits", out=tmp_path / "other", epochs=1, callbacks=[print])
    assert not (tmp_path / "other").exists()


def test_flat_params_and_tags():
    settings = {"training": {"lr": 0.001, "seed": 0}, "model": {"hidden": [32], "noise": None}}
    assert flat_params(settings) == {
        "training.lr": "0.001",
        "training.seed": "0",
        "model.hidden": "[32]",
        "model.noise": "null",
    }
    assert [scalar_tag(k) for k in ("train_loss", "train_kl", "val_loss", "seconds")] == [
        "train/loss",
        "train/kl",
        "val/loss",
        "time/seconds",
    ]
