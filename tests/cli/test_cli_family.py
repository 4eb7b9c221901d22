"""The family's CLI switches: presets, combined parts, denoising and NLL evaluation."""

from __future__ import annotations

import json

import pytest
import torch

import aekit
from aekit.cli import main
from aekit.cli.options import family_options
from aekit.errors import ConfigError

QUICK = ["--limit", "200", "--epochs", "1", "--latent-dim", "4", "--quiet"]


def config_of(out) -> dict:
    return json.loads((out / "config.json").read_text())["model"]["config"]


@pytest.mark.parametrize("model", ["conv", "conv-vae", "vae", "sparse", "contractive"])
def test_every_new_preset_trains_from_the_cli(model, tmp_path):
    extra = ["--channels", "4,8"] if model.startswith("conv") else ["--hidden", "16"]
    if model == "contractive":
        extra = []
    assert main(["train", *QUICK, "--model", model, *extra, "--out", str(tmp_path / "r")]) == 0
    assert config_of(tmp_path / "r")["image_shape"] == [1, 8, 8]  # from the digits data


def test_parts_combine_on_the_command_line(tmp_path, capsys):
    """A convolutional model with a sparsity penalty and masking noise (the issue's example)."""
    out = tmp_path / "c"
    argv = ["train", *QUICK, "--model", "conv", "--channels", "4,8"]
    argv += ["--sparse-kl", "0.1", "--noise", "mask:0.25", "--out", str(out)]
    assert main(argv) == 0
    cfg = config_of(out)
    assert cfg["penalties"] == {"sparse": {"weight": 1.0, "target": 0.1}}  # each part's record
    assert cfg["latent_activation"] == "sigmoid"
    assert cfg["corruption"] == {"kind": "noise", "noise": "mask:0.25"}
    assert type(aekit.load(out)).__name__ == "ConvAutoencoder"


def test_vae_switches_reach_the_config(tmp_path):
    out = tmp_path / "v"
    argv = ["train", *QUICK, "--model", "vae", "--hidden", "16", "--beta", "0.5"]
    argv += ["--kl-warmup", "3", "--iwae", "4", "--likelihood", "bernoulli", "--out", str(out)]
    assert main(argv) == 0
    cfg = config_of(out)
    gaussian = cfg["latent_settings"]
    assert (gaussian["kl_weight"], gaussian["kl_warmup"], gaussian["iwae_samples"]) == (0.5, 3, 4)
    assert cfg["loss"] == "bce"


def test_eval_reports_nll_in_nats_and_denoising_scores(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["train", *QUICK, "--model", "vae", "--hidden", "16", "--out", str(out)]) == 0
    capsys.readouterr()
    argv = ["eval", str(out), "--limit", "50", "--nll", "--samples", "20", "--binarize"]
    assert main([*argv, "--noise", "gaussian:0.3:clip", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["nll"] > 0 and metrics["nll_samples"] == 20
    assert metrics["noise"] == "gaussian:0.3:clip" and "noisy_psnr" in metrics


def test_eval_nll_of_a_deterministic_model_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["train", *QUICK, "--hidden", "16", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--nll", "--samples", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error:") and "Gaussian latent" in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--model", "dense", "--beta", "2"], "applies to a gaussian latent"),
        (["--model", "dense", "--noise", "blur:1"], "unknown noise"),
        (["--model", "vae", "--likelihood", "gaussian", "--loss", "bce"], "give one of the two"),
    ],
)
def test_bad_family_switches_are_one_line_errors(argv, fragment, tmp_path, capsys):
    assert main(["train", *QUICK, *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aekit: error:") and fragment in err and "\n" not in err


def test_conv_on_tabular_data_explains_itself(tmp_path, capsys):
    import numpy as np

    path = tmp_path / "t.npy"
    np.save(path, np.random.default_rng(0).random((50, 16)).astype(np.float32))
    assert (
        main(
            ["train", "--data", str(path), "--model", "conv", *QUICK, "--out", str(tmp_path / "r")]
        )
        == 2
    )
    assert "needs image data" in capsys.readouterr().err


def test_family_options_rules():
    assert family_options("dense", sparse_kl=0.05) == {
        "sparse_target": 0.05,
        "sparse_weight": 1.0,
        "latent_activation": "sigmoid",
    }
    assert family_options("sparse", sparse_kl=0.1)["sparse_weight"] == 3.0  # the preset's
    assert family_options("vae", likelihood="gaussian") == {"loss": "mse"}
    with pytest.raises(ConfigError, match="unknown likelihood"):
        family_options("vae", likelihood="poisson")


def test_train_help_documents_the_family_flags(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--sparse-kl", "--l1", "--noise", "--contractive", "--beta", "--kl-warmup"):
        assert flag in text
    for flag in ("--free-bits", "--iwae", "--likelihood", "--latent", "--channels"):
        assert flag in text


def test_a_resumed_noisy_vae_with_warm_up_is_bit_identical(tmp_path):
    """Noise, reparameterisation and the KL warm-up all survive a resume exactly."""
    args = ["train", "--limit", "200", "--model", "vae", "--hidden", "16", "--latent-dim", "3"]
    args += ["--noise", "salt-pepper:0.1", "--kl-warmup", "3", "--quiet", "--seed", "5"]
    assert main([*args, "--epochs", "4", "--out", str(tmp_path / "full")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "part")]) == 0
    resume = ["train", "--resume", "--epochs", "4", "--out", str(tmp_path / "part"), "--quiet"]
    assert main(resume) == 0
    a, b = aekit.load(tmp_path / "full"), aekit.load(tmp_path / "part")
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in full]
