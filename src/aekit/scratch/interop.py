"""Conversion to and from the layout of aekit's PyTorch dense model, without importing torch.

Torch layout (``nn.Linear``): ``encoder.{k}.weight`` of shape (out, in), i.e. ``W_E(k+1)^T``,
and ``encoder.{k}.bias`` of shape (out,), for k = 0..L-1 in forward order (``encoder.{L-1}`` is
the latent layer). Untied: ``decoder.{k}.weight`` (out, in) and ``decoder.{k}.bias``. Tied: only
``decoder.{k}.bias``; decoder layer k uses ``encoder.{L-1-k}.weight`` transposed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T", bound="TorchLayout")


class TorchLayout:
    """Mixin of :class:`~aekit.scratch.engine.Autoencoder`: torch-layout weights and config."""

    # provided by Autoencoder
    layers: list[Any]
    params: dict[str, np.ndarray]
    d_in: int
    d_latent: int
    hidden: tuple[int, ...]
    encoder_activation: str
    decoder_activation: str
    tied: bool
    dtype: np.dtype

    def _torch_names(self) -> list[tuple[str, str, bool]]:
        """``(torch key, param name, is_weight)`` for every parameter, in torch's order."""
        L = len(self.layers) // 2
        names = []
        for l, layer in enumerate(self.layers):
            prefix = f"encoder.{l}" if l < L else f"decoder.{l - L}"
            if not layer.transposed:
                names.append((f"{prefix}.weight", layer.weight, True))
            names.append((f"{prefix}.bias", layer.bias, False))
        return names

    def state_dict_torch_layout(self) -> dict[str, np.ndarray]:
        """The parameters as fresh arrays named and shaped like the PyTorch model's state dict.

        Weights are transposed to (out, in), biases flattened to (out,); dtype is kept.
        """
        state = {}
        for key, name, is_weight in self._torch_names():
            p = self.params[name]
            state[key] = np.ascontiguousarray(p.T) if is_weight else p.reshape(-1).copy()
        return state

    @classmethod
    def from_torch_layout(
        cls: type[T],
        state: Mapping[str, Any],
        encoder_activation: str = "sigmoid",
        decoder_activation: str = "identity",
        dtype: type | np.dtype | str | None = None,
    ) -> T:
        """Build a model from a torch-layout state dict (arrays, or CPU tensors without grad).

        The widths, hidden layers and tying are read from the keys and shapes; ``dtype=None``
        keeps the dtype of ``encoder.0.weight``. The arrays are copied, so the result shares
        no memory with ``state``.
        """
        L = 0
        while f"encoder.{L}.weight" in state:
            L += 1
        if L == 0:
            raise ValueError("state has no 'encoder.0.weight': not a torch-layout dense model")
        weights = [np.asarray(state[f"encoder.{k}.weight"]) for k in range(L)]
        if any(w.ndim != 2 for w in weights):
            raise ValueError("every encoder.{k}.weight must be 2-D (out, in)")
        dims = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        if dtype is None:
            dtype = weights[0].dtype if weights[0].dtype in (np.float32, np.float64) else np.float64
        model = cls(  # type: ignore[call-arg]
            dims[0],
            dims[-1],
            encoder_activation=encoder_activation,
            decoder_activation=decoder_activation,
            tied="decoder.0.weight" not in state,
            dtype=dtype,
            hidden=tuple(dims[1:-1]),
        )
        expected = model.state_dict_torch_layout()
        missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
        if missing or unexpected:
            raise ValueError(
                f"state does not match a dense model with widths {dims} (tied={model.tied}): "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        for key, name, is_weight in model._torch_names():
            arr = np.asarray(state[key])
            if arr.shape != expected[key].shape:
                raise ValueError(f"{key} has shape {arr.shape}, expected {expected[key].shape}")
            arr = arr.T if is_weight else arr.reshape(1, -1)
            model.params[name] = np.array(arr, dtype=model.dtype, order="C", copy=True)
        return model

    def to_config(self) -> dict[str, Any]:
        """The architecture under the PyTorch model's names (weights not included)."""
        return {
            "input_dim": self.d_in,
            "latent_dim": self.d_latent,
            "hidden": list(self.hidden),
            "activation": self.encoder_activation,
            "latent_activation": self.encoder_activation,
            "output_activation": self.decoder_activation,
            "tied": self.tied,
        }

    @classmethod
    def from_config(
        cls: type[T], config: Mapping[str, Any], seed: int = 0, dtype: Any = np.float64
    ) -> T:
        """Inverse of :meth:`to_config` (fresh weights from ``seed``)."""
        act = config.get("activation", "sigmoid")
        if config.get("latent_activation", act) != act:
            raise ValueError(
                "the NumPy engine applies one encoder activation to hidden and latent layers; "
                f"got activation={act!r}, latent_activation={config['latent_activation']!r}"
            )
        return cls(  # type: ignore[call-arg]
            config["input_dim"],
            config["latent_dim"],
            encoder_activation=act,
            decoder_activation=config.get("output_activation", "identity"),
            tied=config.get("tied", False),
            seed=seed,
            dtype=dtype,
            hidden=tuple(config.get("hidden", ())),
        )
