"""Dense (fully connected) autoencoders: seed 000 in matrix form, plus tied weights (seed 002).

Layer k of the encoder computes H_k = s(H_{k-1} W_k + b_k); with no hidden layers this is the
seed's Z = s_enc(X W_E + b_E) and X_hat = s_dec(Z W_D + b_D). PyTorch's ``nn.Linear`` stores
W_k transposed, as ``weight`` of shape (out, in); :mod:`aekit.scratch` uses the same layout
through ``state_dict_torch_layout``. The latent kind, penalties, corruption and loss come
from :class:`~aekit.nn.config.ModelConfig` through the base class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..activations import ACTIVATIONS, activation_module
from ..base import Autoencoder
from ..config import OUTPUT_ACTIVATIONS, ModelConfig, check_choice, sizes

__all__ = ["OUTPUT_ACTIVATIONS", "DenseAutoencoder", "DenseConfig"]


@dataclass
class DenseConfig(ModelConfig):
    """Settings of a dense autoencoder (and every field of :class:`ModelConfig`).

    ``hidden`` are the encoder's hidden widths (input side first); the decoder mirrors them
    unless ``decoder_hidden`` is given. ``activation`` follows every hidden layer,
    ``latent_activation`` the code layer, ``output_activation`` the reconstruction ("auto" is
    resolved from the data's range before building: sigmoid for data in [0, 1], else
    identity, as seed 000 notes). ``tied`` sets each decoder weight to the transpose of its
    mirror encoder weight (seed 002).
    """

    hidden: tuple[int, ...] = (128,)
    decoder_hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    tied: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = sizes(self.hidden, "hidden")
        if self.decoder_hidden is not None:
            self.decoder_hidden = sizes(self.decoder_hidden, "decoder_hidden")
        check_choice("activation", self.activation, ACTIVATIONS)
        self.tied = bool(self.tied)
        if self.tied and self.decoder_hidden not in (None, tuple(reversed(self.hidden))):
            raise ConfigError("tied weights need the decoder to mirror the encoder")

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        mirrored = tuple(reversed(self.hidden))
        return mirrored if self.decoder_hidden is None else self.decoder_hidden


class DenseAutoencoder(Autoencoder):
    """Dense encoder D_in -> hidden... -> D_latent and decoder D_latent -> ... -> D_in.

    State-dict layout: ``encoder.{k}.weight`` (out, in) and ``encoder.{k}.bias`` in forward
    order with the code layer last; ``decoder.{k}.weight/bias``, or with ``tied`` only
    ``decoder.{k}.bias`` (layer k uses ``encoder.{L-1-k}.weight`` transposed); a Gaussian
    latent adds ``logvar.weight/bias`` beside the code layer (which then gives mu).
    """

    config_class = DenseConfig

    def __init__(self, config: DenseConfig, name: str = "dense") -> None:
        super().__init__(config, name)
        enc_sizes = (config.input_dim, *config.hidden, config.latent_dim)
        dec_sizes = (config.latent_dim, *config.decoder_sizes, config.input_dim)
        self.encoder = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(enc_sizes[:-1], enc_sizes[1:], strict=True)
        )
        if config.tied:
            # decoder layer k uses encoder layer L-1-k's weight, transposed; only biases are own
            self.decoder = nn.ModuleList(_TiedBias(b) for b in dec_sizes[1:])
        else:
            self.decoder = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip(dec_sizes[:-1], dec_sizes[1:], strict=True)
            )
        self.act = activation_module(config.activation)
        self._init_latent(enc_sizes[-2])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.encoder[:-1]:
            h = self.act(layer(h))  # (N, a) @ (a, b) + (1, b) -> (N, b)
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
                h = self.act(h)
        return h

    def closed_form_weight(self) -> torch.Tensor | None:
        return self.encoder[0].weight if len(self.encoder) == 1 else None


class _TiedBias(nn.Module):
    """The bias of a tied decoder layer; its weight is borrowed from the encoder."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(width))
