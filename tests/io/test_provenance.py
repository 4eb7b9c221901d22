"""A run says how it was made (issue 26, point 2): config.json's ``provenance`` and ``resumes``,
and a resume held against them."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest
import torch

import aekit
from aekit.cli import main
from aekit.errors import ConfigError
from aekit.io.provenance import provenance, resume_check

QUICK = ["--limit", "200", "--hidden", "8", "--latent-dim", "2", "--quiet", "--init", "random"]


def test_provenance_names_versions_device_processes_and_command(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["aekit", "train", "--epochs", "1"])
    made = provenance(torch.device("cpu"), "fp32")
    assert made["aekit"] == aekit.__version__ and made["torch"] == torch.__version__
    assert made["python"] == platform.python_version()
    assert (made["device"], made["precision"], made["processes"]) == ("cpu", "fp32", 1)
    assert made["threads"] == torch.get_num_threads()
    assert made["command"] == ["aekit", "train", "--epochs", "1"]
    assert provenance("cuda:1", "bf16")["device"] == "cuda"  # by kind: indices move
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert provenance("cpu", "fp32")["processes"] == 4  # under torchrun, before init
    main_py = str(Path(aekit.__file__).with_name("__main__.py"))  # python -m aekit's argv[0]
    monkeypatch.setattr(sys, "argv", [main_py, "train", "--epochs", "1"])
    assert provenance("cpu", "fp32")["command"] == ["aekit", "train", "--epochs", "1"]


def test_resume_check_refuses_what_changes_the_result_and_names_the_rest():
    stored = provenance("cpu", "fp32")
    assert resume_check(stored, dict(stored), streamed=True) == []
    assert resume_check(None, stored, streamed=True) == []  # runs from before the record
    with pytest.raises(ConfigError, match="streamed its data in 2 process.*cannot resume in 1"):
        resume_check({**stored, "processes": 2}, stored, streamed=True)
    assert resume_check({**stored, "processes": 2}, stored, streamed=False) == []  # in memory
    with pytest.raises(ConfigError, match="computed in bf16 and cannot resume in fp32"):
        resume_check({**stored, "precision": "bf16"}, stored, streamed=False)
    said = resume_check({**stored, "machine": "elsewhere", "device": "cuda"}, stored, False)
    assert said == [f"machine elsewhere -> {stored['machine']}", "device cuda -> cpu"]


def test_a_run_records_its_making_and_each_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["train", *QUICK, "--epochs", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["aekit", *argv])
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["provenance"]["command"] == ["aekit", *argv]
    assert cfg["provenance"]["device"] == "cpu" and "resumes" not in cfg
    cfg["provenance"]["machine"] = "another-host"  # as if trained elsewhere
    (out / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and "machine another-host ->" in lines[0]
    cfg = json.loads((out / "config.json").read_text())
    assert len(cfg["resumes"]) == 1 and cfg["resumes"][0]["device"] == "cpu"
    assert cfg["provenance"]["machine"] == "another-host"  # the start's record is kept


def test_a_streamed_run_is_not_resumed_under_another_process_count(tmp_path, capsys):
    import numpy as np

    data = tmp_path / "rows.npy"
    np.save(data, np.random.default_rng(0).random((300, 6), dtype=np.float32))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--stream", *QUICK, "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"].get("stream") and cfg["provenance"]["processes"] == 1
    cfg["provenance"]["processes"] = 2  # as if it had run under torchrun with two processes
    (out / "config.json").write_text(json.dumps(cfg))
    before = (out / "checkpoint.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "streamed its data in 2 process(es)" in err[0]
    assert (out / "checkpoint.safetensors").read_bytes() == before  # nothing trained on


def test_a_resume_stopped_at_its_record_write_resumes_again(tmp_path, monkeypatch):
    """The resume's record is a new write before the resumed fit's first step: a failure there
    leaves config.json as it was, and the next resume proceeds."""
    from aekit.io import rundir

    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "config.json").read_bytes()
    real = rundir.write_json  # what Run writes config.json with

    def fail(path, record):
        raise KeyboardInterrupt  # stopped at this instant (as Ctrl-C)

    monkeypatch.setattr(rundir, "write_json", fail)
    assert main(["train", "--resume", "--epochs", "1", "--out", str(out)]) == 130
    assert (out / "config.json").read_bytes() == before
    monkeypatch.setattr(rundir, "write_json", real)
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert len(cfg["resumes"]) == 1 and cfg["training"]["epochs"] == 2


def test_a_resume_under_another_precision_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    argv = ["train", "--resume", "--precision", "bf16", "--epochs", "2", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision (the run has fp32, not bf16)" in err[0], err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # a record that says another precision than the settings (a run from elsewhere) too
    cfg = json.loads((out / "config.json").read_text())
    cfg["provenance"]["precision"] = "bf16"
    (out / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "computed in bf16 and cannot resume in fp32" in err[0], err
    assert "resumes" not in json.loads((out / "config.json").read_text())


@pytest.mark.parametrize("key, value", [("device", "cuda"), ("torch", "2.0.0"), ("aekit", "0.0.1")])
def test_a_resume_that_differs_but_can_says_so_in_one_line_and_proceeds(
    key, value, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    now = cfg["provenance"][key]
    cfg["provenance"][key] = value  # as if trained on a GPU, or under other versions
    (out / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"aekit: warning: resuming {out} with another {key} {value} -> {now}; "
                     "the run continues"], lines  # fmt: skip
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["resumes"][-1][key] == now and cfg["provenance"][key] == value  # both kept
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
