"""Dense (fully connected) autoencoders: seed 000 in matrix form, plus tied weights (seed 002).

Layer k of the encoder computes H_k = s(H_{k-1} W_k + b_k); with no hidden layers this is the
seed's Z = s_enc(X W_E + b_E) and X_hat = s_dec(Z W_D + b_D). PyTorch's ``nn.Linear`` stores
W_k transposed, as ``weight`` of shape (out, in); :mod:`aekit.scratch` uses the same layout
through ``state_dict_torch_layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..losses import LOSSES, reconstruction_loss
from .base import ACTIVATIONS, Autoencoder, activation_module
from .registry import register_model

OUTPUT_ACTIVATIONS = ("sigmoid", "identity", "auto")


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _sizes(value, what: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a list of layer sizes, got {value!r}") from None
    if any(s <= 0 for s in sizes):
        raise ConfigError(f"{what} sizes must be positive, got {list(sizes)}")
    return sizes


@dataclass
class DenseConfig:
    """Settings of a dense autoencoder.

    ``hidden`` are the encoder's hidden widths (input side first); the decoder mirrors them
    unless ``decoder_hidden`` is given. ``activation`` follows every hidden layer,
    ``latent_activation`` the code layer, ``output_activation`` the reconstruction ("auto" is
    resolved from the data's range before building: sigmoid for data in [0, 1], else
    identity, as seed 000 notes). ``tied`` sets each decoder weight to the transpose of its
    mirror encoder weight (seed 002).
    """

    input_dim: int
    latent_dim: int = 16
    hidden: tuple[int, ...] = (128,)
    decoder_hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    latent_activation: str = "identity"
    output_activation: str = "sigmoid"
    tied: bool = False
    loss: str = "mse"

    def __post_init__(self) -> None:
        if int(self.input_dim) <= 0 or int(self.latent_dim) <= 0:
            raise ConfigError("input_dim and latent_dim must be positive integers")
        self.input_dim, self.latent_dim = int(self.input_dim), int(self.latent_dim)
        self.hidden = _sizes(self.hidden, "hidden")
        if self.decoder_hidden is not None:
            self.decoder_hidden = _sizes(self.decoder_hidden, "decoder_hidden")
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("latent activation", self.latent_activation, ACTIVATIONS)
        _check_choice("output activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _check_choice("loss", self.loss, LOSSES)
        if self.output_activation == "auto":
            raise ConfigError("output_activation 'auto' must be resolved from the data first")
        if self.loss == "bce" and self.output_activation != "sigmoid":
            raise ConfigError(
                "loss 'bce' needs outputs in [0, 1]: use output activation sigmoid "
                "(and data scaled to [0, 1])"
            )
        if self.tied and self.decoder_hidden not in (None, tuple(reversed(self.hidden))):
            raise ConfigError("tied weights need the decoder to mirror the encoder")

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        mirrored = tuple(reversed(self.hidden))
        return mirrored if self.decoder_hidden is None else self.decoder_hidden


@register_model(
    "dense",
    summary="fully connected encoder and mirrored decoder (seed 000)",
    hidden=(128,),
)
@register_model(
    "linear",
    summary="identity activations everywhere: the autoencoder that PCA solves in closed form",
    hidden=(),
    activation="identity",
    latent_activation="identity",
    output_activation="identity",
)
@register_model(
    "tied", summary="dense with decoder weights = encoder weights transposed (seed 002)", tied=True
)
class DenseAutoencoder(Autoencoder):
    """Dense encoder D_in -> hidden... -> D_latent and decoder D_latent -> ... -> D_in."""

    config_class = DenseConfig

    def __init__(self, config: DenseConfig, name: str = "dense") -> None:
        super().__init__()
        self.config, self.name = config, name
        enc_sizes = (config.input_dim, *config.hidden, config.latent_dim)
        dec_sizes = (config.latent_dim, *config.decoder_sizes, config.input_dim)
        self.encoder = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(enc_sizes[:-1], enc_sizes[1:], strict=True)
        )
        n_enc = len(self.encoder)
        self.enc_act = nn.ModuleList(
            activation_module(config.activation if k < n_enc - 1 else config.latent_activation)
            for k in range(n_enc)
        )
        if config.tied:
            # decoder layer k uses encoder layer L-1-k's weight, transposed; only biases are own
            self.decoder = nn.ModuleList(_TiedBias(b) for b in dec_sizes[1:])
        else:
            self.decoder = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip(dec_sizes[:-1], dec_sizes[1:], strict=True)
            )
        self.dec_act = activation_module(config.activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer, act in zip(self.encoder, self.enc_act, strict=True):
            h = act(layer(h))  # (N, a) @ (a, b) + (1, b) -> (N, b)
        return h

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        last = len(self.decoder) - 1
        for k, layer in enumerate(self.decoder):
            if self.config.tied:
                # X W^T with W = encoder weight in torch's (out, in) layout: F.linear(h, W.t())
                h = F.linear(h, self.encoder[last - k].weight.t(), layer.bias)
            else:
                h = layer(h)
            if k < last:
                h = self.dec_act(h)
        return h

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.decode_logits(self.encode(x))
        x_hat = torch.sigmoid(logits) if self.config.output_activation == "sigmoid" else logits
        return {"loss": reconstruction_loss(self.config.loss, x_hat, logits, x)}


class _TiedBias(nn.Module):
    """The bias of a tied decoder layer; its weight is borrowed from the encoder."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(width))
