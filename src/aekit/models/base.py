"""The base class every aekit autoencoder derives from: it composes the objective.

An architecture subclass builds ``self.encoder`` (an ``nn.ModuleList`` whose last entry is the
code layer, a Linear), ``self.decoder``, implements :meth:`Autoencoder.features` (input -> the
representation the code layer reads) and :meth:`Autoencoder.decode_logits`, then calls
:meth:`Autoencoder._init_latent`. Everything else (latent kind, penalties, corruption, loss)
is read from the config here, once, for every architecture.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.noise import Noise
from ..errors import DataError
from ..losses import reconstruction_loss
from .gaussian import LOGVAR_MAX, LOGVAR_MIN, gaussian_objective
from .penalties import penalty_terms

ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
EVAL_SEED = 0  # the fixed seed of the noise and samples drawn by loss() in eval mode


def activation_module(name: str) -> nn.Module:
    """The nn.Module for an activation name (validated by the configs)."""
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}[
        name
    ]()


def eval_generator(device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded with EVAL_SEED: eval-mode randomness that repeats exactly."""
    return torch.Generator(device=device).manual_seed(EVAL_SEED)


class Autoencoder(nn.Module):
    """An encoder f and a decoder g with x_hat = g(f(x)); the model owns its objective.

    :meth:`loss` returns a dict whose ``"loss"`` entry the trainer minimises, with the parts
    beside it ("recon", "kl", "sparse", "l1", "contractive"). In training mode its randomness
    (corruption, reparameterisation) comes from torch's global RNG; in eval mode from a
    fixed-seed generator, so that validation losses are reproducible. :meth:`encode` and
    :meth:`forward` are deterministic (a Gaussian latent uses its posterior mean). ``scaler``
    is the data scaler the model was trained with (or None); it travels with the model
    through :func:`aekit.save` / :func:`aekit.load`.
    """

    config_class: type
    name: str
    scaler = None
    encoder: nn.ModuleList
    decoder: nn.ModuleList

    def __init__(self, config, name: str) -> None:
        super().__init__()
        self.config, self.name = config, name
        self.epoch: int | None = None  # set by the trainer through set_epoch (KL warm-up)
        self.noise = Noise.parse(config.noise) if config.noise else None

    def _init_latent(self, width: int) -> None:
        """The latent kind: the code activation, and a log-variance head for a Gaussian."""
        self.code_act = activation_module(self.config.latent_activation)
        if self.config.latent == "gaussian":
            # log sigma^2 from the same features as mu (= the code layer encoder[-1])
            self.logvar = nn.Linear(width, self.config.latent_dim)

    # ---- the architecture's part ---------------------------------------------------------

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (N, D_in) -> (N, F)
        """The representation the code layer reads: every encoder layer but the last."""
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:  # (N, D_latent) -> (N, D_in)
        raise NotImplementedError

    def closed_form_weight(self) -> torch.Tensor | None:
        """W (D_latent, D_in) when the encoder is one dense layer (closed-form Jacobian)."""
        return None

    # ---- the composed model --------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (N, D_in) -> (N, D_latent)
        """The code: s(W h + b), or the posterior mean mu for a Gaussian latent."""
        return self.code_act(self.encoder[-1](self.features(x)))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x) for a Gaussian latent, log sigma^2 clamped to be safe."""
        h = self.features(x)
        return self.encoder[-1](h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """X_hat = s_dec(pre-activation)."""
        return torch.sigmoid(logits) if self.config.output_activation == "sigmoid" else logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based); drives the KL warm-up."""
        self.epoch = int(epoch)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective on a clean batch x (N, D_in): corrupt, encode, decode, penalise."""
        gen = None if self.training else eval_generator(x.device)
        x_in = x if self.noise is None else self.noise(x, gen)
        if self.config.latent == "gaussian":
            terms, code = gaussian_objective(self, x, x_in, gen)
        else:
            code = self.encode(x_in)
            logits = self.decode_logits(code)
            recon = reconstruction_loss(
                self.config.loss, self.output(logits), logits, x, self.config.image_shape
            )
            terms = {"loss": recon, "recon": recon}
        for key, value in penalty_terms(self, x_in, code, gen).items():
            terms[key] = value
            terms["loss"] = terms["loss"] + value
        return terms

    # ---- numpy conveniences: batched, no autograd, model's dtype and device --------------

    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    def _to_tensor(self, X: np.ndarray | torch.Tensor, width: int) -> torch.Tensor:
        p = next(self.parameters())
        t = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
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
