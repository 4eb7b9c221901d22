"""The base class every aekit autoencoder derives from."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import DataError

ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")


def activation_module(name: str) -> nn.Module:
    """The nn.Module for an activation name (validated by the configs)."""
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}[
        name
    ]()


class Autoencoder(nn.Module):
    """An encoder f and a decoder g with x_hat = g(f(x)); the model owns its objective.

    Subclasses implement :meth:`encode` and :meth:`decode_logits` (the output layer's
    pre-activation) and set ``self.output_activation``; :meth:`loss` returns a dict whose
    ``"loss"`` entry the trainer minimises. ``scaler`` is the data scaler the model was trained
    with (or None); it travels with the model through :func:`aekit.save` / :func:`aekit.load`.
    """

    config_class: type
    name: str
    scaler = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (N, D_in) -> (N, D_latent)
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:  # (N, D_latent) -> (N, D_in)
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """X_hat = s_dec(pre-activation)."""
        logits = self.decode_logits(z)
        return torch.sigmoid(logits) if self.config.output_activation == "sigmoid" else logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # numpy conveniences: batched, no autograd, model's dtype and device
    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    def _to_tensor(self, X: np.ndarray | torch.Tensor, width: int) -> torch.Tensor:
        p = next(self.parameters())
        if not torch.is_tensor(X):
            X = np.asarray(X)
            X = X if X.flags.writeable else X.copy()  # torch refuses to share read-only memory
        t = torch.as_tensor(X)
        if t.ndim != 2 or t.shape[1] != width:
            raise DataError(
                f"data has shape {tuple(t.shape)} but the model expects (n, {width}); "
                "use data of the width the model was trained on"
            )
        return t.to(dtype=p.dtype, device=p.device)

    @torch.no_grad()
    def _batched(self, fn, X, width: int, batch_size: int = 4096) -> np.ndarray:
        was_training = self.training
        self.eval()
        try:
            t = self._to_tensor(X, width)
            outs = [fn(t[i : i + batch_size]) for i in range(0, len(t), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(outs).cpu().numpy()

    def encode_numpy(self, X: np.ndarray) -> np.ndarray:
        """Codes Z for already-scaled data X (N, D_in) -> (N, D_latent)."""
        return self._batched(self.encode, X, self.config.input_dim)

    def decode_numpy(self, Z: np.ndarray) -> np.ndarray:
        """Reconstructions in the scaled space from codes (N, D_latent) -> (N, D_in)."""
        return self._batched(self.decode, Z, self.config.latent_dim)

    def reconstruct_numpy(self, X: np.ndarray) -> np.ndarray:
        """X_hat for already-scaled data X."""
        return self._batched(self.forward, X, self.config.input_dim)
