"""Parts own their settings (issue 25, point 3): each latent kind, penalty and corruption has its
own frozen dataclass, checked where it is made and serialised with the model; flat names are
read once, at the edge; a new part is one class and a registry row."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from aekit.cli import main
from aekit.data.noise import Noise
from aekit.errors import ConfigError
from aekit.io.checkpoint import build_from_record, model_record
from aekit.nn import build_model
from aekit.nn.config import ModelConfig
from aekit.nn.corruption import CORRUPTIONS
from aekit.nn.latent import LATENTS
from aekit.nn.parts import PartSettings, number, set_fields
from aekit.nn.penalties import PENALTIES
from aekit.nn.registry import MODELS

PARTS = [
    *((f"latent {k}", c.Settings) for k, c in LATENTS.items()),
    *((f"penalty {k}", c.Settings) for k, c in PENALTIES.items()),
    *((f"corruption {k}", c.Settings) for k, c in CORRUPTIONS.items()),
]
# a valid value for the settings that have no default
REQUIRED = {"noise": "gaussian:0.1", "share": 0.1}
# one invalid value per part that has fields: its own __post_init__ refuses it
BAD = {
    "latent gaussian": {"kl_weight": -1.0},
    "latent quantized": {"rate_weight": float("nan")},
    "penalty sparse": {"weight": 1.0, "target": 1.5},
    "penalty l1": {"weight": -0.5},
    "penalty contractive": {"weight": 1.0, "method": "guess"},
    "corruption noise": {"noise": "speckle:1"},
    "corruption blindspot": {"share": 1.0},
    "corruption sure": {"noise": "mask:0.1"},
}


@pytest.mark.parametrize("what, cls", PARTS, ids=[w for w, _ in PARTS])
def test_each_part_has_a_frozen_settings_dataclass_that_round_trips(what, cls):
    assert issubclass(cls, PartSettings) and dataclasses.is_dataclass(cls)
    required = {f.name: REQUIRED[f.name] for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING}  # fmt: skip
    settings = cls(**required)
    if dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(settings, dataclasses.fields(cls)[0].name, 0)
    as_json = json.loads(json.dumps(settings.to_dict()))
    assert cls.from_dict(as_json, what) == settings
    assert set(cls.FLAT.values()) == {f.name for f in dataclasses.fields(cls)}  # all reachable
    with pytest.raises(ConfigError, match="has no setting"):
        cls.from_dict({**as_json, "bogus": 1}, what)


@pytest.mark.parametrize("what", sorted(BAD))
def test_a_part_refuses_a_bad_value_where_it_is_made(what):
    cls = dict(PARTS)[what]
    with pytest.raises(ConfigError):
        cls(**BAD[what])


def _preset_kwargs(name: str) -> dict:
    spec = MODELS[name]
    fields = {f.name for f in dataclasses.fields(spec.cls.config_class)}
    if "channels" in fields or "depth" in fields:
        return {"image_shape": (1, 16, 16)}
    return {}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_preset_serialises_its_parts_and_rebuilds_the_same_config(name):
    kwargs = _preset_kwargs(name)
    model = build_model(name, 256, **kwargs)
    record = json.loads(json.dumps(model_record(model)))
    config = record["config"]
    assert not set(config) & {"beta", "sparse_weight", "noise", "blindspot", "kl_warmup"}
    assert set(config) >= {"latent_settings", "penalties", "corruption"}
    assert build_from_record(record).config == model.config


def test_flat_names_are_read_at_the_edge_into_each_part():
    c = ModelConfig.from_values(input_dim=8, latent="gaussian", beta=2.0, kl_warmup=3)
    assert c.latent_settings == LATENTS["gaussian"].Settings(kl_weight=2.0, kl_warmup=3)
    c = ModelConfig.from_values(input_dim=8, latent="quantized", beta=0.25)  # the old name
    assert c.latent_settings.rate_weight == 0.25
    c = ModelConfig.from_values(
        input_dim=8, latent_activation="sigmoid", sparse_weight=3, sparse_target=0.1,
        l1_weight=0.0, noise="mask:.25",
    )  # fmt: skip
    assert list(c.penalties) == ["sparse"] and c.penalties["sparse"].target == 0.1  # l1 off
    assert c.corruption.noise == Noise("mask", 0.25) and c.noise == Noise("mask", 0.25)


def test_the_kl_weight_and_the_rate_weight_are_separate_settings():
    with pytest.raises(ConfigError, match="rate_weight"):  # says what the latent takes
        build_model("compress", 64, kl_weight=0.1, image_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="quantized latent"):
        build_model("vae", 64, rate_weight=0.1)
    assert build_model("vae", 64, kl_weight=0.5).config.latent_settings.kl_weight == 0.5
    rate = build_model("compress", 64, rate_weight=4.0, image_shape=(1, 8, 8))
    assert rate.config.latent_settings.rate_weight == 4.0


def test_an_old_flat_config_loads_into_the_parts():
    """config.json before parts owned their settings: every flat name, at its value or off."""
    old = {
        "input_dim": 64, "latent_dim": 4, "latent": "deterministic",
        "latent_activation": "sigmoid", "output_activation": "sigmoid", "loss": "mse",
        "image_shape": None, "sparse_weight": 3.0, "sparse_target": 0.05, "l1_weight": 0.0,
        "contractive_weight": 0.0, "contractive_method": "auto", "contractive_samples": 1,
        "noise": "gaussian:0.3", "blindspot": 0.0, "beta": 1.0, "kl_warmup": 0,
        "free_bits": 0.0, "iwae_samples": 1, "hidden": [16], "decoder_hidden": None,
        "activation": "relu", "tied": False,
    }  # fmt: skip
    model = build_from_record({"name": "dense", "config": old})
    assert list(model.config.penalties) == ["sparse"]
    assert str(model.config.noise) == "gaussian:0.3"
    assert model.config.legacy_dict() == old  # what the .aek model hash is taken on


def test_the_cli_builds_a_noise_and_a_resume_compares_parsed_values(tmp_path, capsys):
    out = tmp_path / "r"
    quick = ["--limit", "100", "--latent-dim", "2", "--hidden", "8", "--quiet"]
    assert main(["train", *quick, "--epochs", "1", "--noise", "mask:0.25", "--out", str(out)]) == 0
    # the same noise in another spelling is the same setting, not a conflict
    argv = ["train", *quick, "--epochs", "2", "--noise", "mask:.25", "--resume", "--out", str(out)]
    assert main(argv) == 0
    argv[argv.index("mask:.25")] = "mask:0.3"
    assert main(argv) == 2
    assert "noise (the run has mask:0.25, not mask:0.3)" in capsys.readouterr().err
    assert main(["train", *quick, "--noise", "speckle:1", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


# ---- a new part is one class and a registry row ------------------------------------------


@dataclass(frozen=True)
class _MeanSettings(PartSettings):
    weight: float = 0.0
    FLAT = {"mean_weight": "weight"}

    def __post_init__(self) -> None:
        set_fields(self, weight=number("mean_weight", self.weight))

    @staticmethod
    def check(config) -> None:
        if config.latent != "deterministic":
            raise ConfigError("the mean penalty needs a deterministic code")


class _MeanCode(nn.Module):
    """weight * mean(z)^2: a toy penalty, defined here, that no aekit module knows."""

    name = "mean"
    Settings = _MeanSettings

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.weight)

    def forward(self, model, x_in, code, generator=None):
        return self.weight * code.mean() ** 2


def test_a_new_penalty_is_one_class_and_a_registry_row(monkeypatch):
    monkeypatch.setitem(PENALTIES, "mean", _MeanCode)
    model = build_model("dense", 16, latent_dim=2, hidden=(8,), mean_weight=0.5)
    assert list(model.config.penalties) == ["mean"]
    record = model.forward(torch.rand(4, 16))
    assert "mean" in record and torch.isfinite(record["loss"])
    rebuilt = build_from_record(json.loads(json.dumps(model_record(model))))
    assert rebuilt.config == model.config
    with pytest.raises(ConfigError, match="deterministic code"):
        build_model("vae", 16, mean_weight=0.5)


def test_a_model_setting_given_to_train_says_where_it_goes(tmp_path):
    import aekit

    with pytest.raises(ConfigError, match=r"model setting: pass model_options=\{'noise'"):
        aekit.train("digits", out=tmp_path / "r", epochs=1, noise="gaussian:0.1")
    with pytest.raises(ConfigError, match="has no setting bogus"):
        aekit.train("digits", out=tmp_path / "r", epochs=1, bogus=1)
    assert not (tmp_path / "r").exists()
