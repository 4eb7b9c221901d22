"""The base class every aekit autoencoder derives from: encoder . latent . decoder.

An architecture subclass builds ``self.encoder`` (an ``nn.ModuleList`` whose last entry is the
code layer, a Linear), ``self.decoder``, implements :meth:`Autoencoder.features` (input -> the
representation the code layer reads) and :meth:`Autoencoder.decode_logits`, then calls
:meth:`Autoencoder._init_latent`. The parts the config names are modules composed here, once,
for every architecture: the corruption (:mod:`aekit.nn.corruption`), the latent kind
(:mod:`aekit.nn.latent`) and the penalties (:mod:`aekit.nn.penalties`).

``forward(x)`` returns the record the objective needs (``loss`` and its terms, ``x_hat``,
``code``), so that a wrapper such as DistributedDataParallel, ``torch.compile`` or a captured
CUDA graph sees all of the work of a training step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.shapes import Layout, as_rows, sample_layout
from ..errors import ConfigError, DataError
from ..functional.losses import masked_loss
from .activations import ACTIVATIONS, activation_module
from .corruption import build_corruption
from .latent import LATENTS
from .penalties import build_penalties

__all__ = ["ACTIVATIONS", "EVAL_SEED", "Autoencoder", "activation_module", "eval_generator"]

EVAL_SEED = 0  # the fixed seed of the noise and samples drawn by forward() in eval mode


def eval_generator(device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded with EVAL_SEED: eval-mode randomness that repeats exactly."""
    return torch.Generator(device=device).manual_seed(EVAL_SEED)


class Autoencoder(nn.Module):
    """An encoder f and a decoder g with x_hat = g(f(x)); the model owns its objective.

    ``model(x)`` returns a dict whose ``"loss"`` entry the trainer minimises, with its terms
    beside it ("recon", "kl", "sparse", "l1", "contractive": 0-dim tensors) and the batch's
    ``x_hat`` (N, D_in) and ``code`` (N, D_latent). In training mode its randomness
    (corruption, reparameterisation) comes from torch's global RNG; in eval mode from a
    fixed-seed generator, so that validation losses are reproducible. :meth:`encode`,
    :meth:`decode` and :meth:`reconstruct` are deterministic (a Gaussian latent uses its
    posterior mean). ``scaler`` is the data scaler the model was trained with (or None), and
    ``units`` the training data's units (:class:`aekit.data.units.Units`, or None), against
    which :meth:`encode_numpy` and :meth:`reconstruct_numpy` check their input; both travel
    with the model through :func:`aekit.save` / :func:`aekit.load`.
    """

    config_class: type
    name: str
    has_code = True  # False: no code layer (a fully convolutional denoiser)
    fully_convolutional = False  # True: reconstruct_images takes images of any H, W
    scaler = None
    units = None
    encoder: nn.ModuleList
    decoder: nn.ModuleList

    def __init__(self, config, name: str) -> None:
        super().__init__()
        self.config, self.name = config, name
        self.corruption = build_corruption(config)
        if getattr(self.corruption, "scores_model", False) and not self.fully_convolutional:
            raise ConfigError(
                f"SURE training scores a denoiser without a code: use --model dncnn, not {name!r}"
            )

    def _init_latent(self, width: int) -> None:
        """The latent kind and the penalties; ``width`` is what the code layer reads."""
        self.latent = LATENTS[self.config.latent](self.config, width)
        self.penalties = build_penalties(self.config)

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
        return self.latent.encode(self, self.features(x))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x) for a Gaussian latent, log sigma^2 clamped to be safe."""
        return self.latent.posterior(self, self.features(x))

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """X_hat = s_dec(pre-activation)."""
        return torch.sigmoid(logits) if self.config.output_activation == "sigmoid" else logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.decode_logits(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """g(f(x)) with the deterministic code: what ``aekit reconstruct`` writes."""
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The record for a clean batch x (N, D_in): corrupt, encode, decode, penalise."""
        gen = None if self.training else eval_generator(x.device)
        x_in, scored = (x, None) if self.corruption is None else self.corruption(x, gen)
        record = self.latent(self, self.features(x_in), x, gen)
        if scored is not None:
            record = self.score_only(record, x, scored)
        for penalty in self.penalties:
            term = penalty(self, x_in, record["code"], gen)
            record[penalty.name] = term
            record["loss"] = record["loss"] + term
        return record

    def score_only(self, record: dict, x: torch.Tensor, scored: torch.Tensor) -> dict:
        """The record with its reconstruction term on the ``scored`` values only (a blind
        spot; the config allows it with a deterministic latent only, where loss = recon)."""
        logits = record.get("logits", record["x_hat"])
        recon = masked_loss(self.config.loss, record["x_hat"], logits, x, scored)
        return {**record, "loss": recon, "recon": recon}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The scalar terms of :meth:`forward`'s record ("loss", "recon", "kl", penalties)."""
        return {k: v for k, v in self(x).items() if v.ndim == 0}

    # ---- numpy conveniences: batched, no autograd, model's dtype and device --------------

    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    def _to_tensor(self, X: np.ndarray | torch.Tensor, width: int) -> torch.Tensor:
        p = next(self.parameters())
        t, _ = self._rows(torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X), width)
        return t.to(dtype=p.dtype, device=p.device)

    def _rows(self, X, width: int):
        """(X as rows (N, width), the layout it came in): images (N, H, W) / (N, C, H, W) of
        the model's image shape are flattened (:func:`aekit.data.shapes.as_rows`); codes
        (width latent_dim) are rows only."""
        image_shape = self.config.image_shape if width == self.config.input_dim else None
        if width != self.config.input_dim:
            arr = X if torch.is_tensor(X) else np.asarray(X)
            if arr.ndim != 2 or arr.shape[1] != width:
                raise DataError(
                    f"codes have shape {tuple(arr.shape)} but the model's codes are "
                    f"(n, {width}); pass one row of {width} numbers per sample"
                )
            return arr, Layout(())
        return as_rows(X, width=width, image_shape=image_shape)

    @torch.no_grad()
    def _batched(self, fn, X, width: int, *, raw_in=False, raw_out=False, batch_size=4096):
        """fn over X in batches, in eval mode; ``raw_in`` / ``raw_out``: the stored scaler is
        applied to each input batch / undone on each output batch (batch by batch, so that a
        large X is never copied whole). Images come back in the shape they came in."""
        p = next(self.parameters())
        arr, layout = self._rows(X, width)
        scaler = self.scaler
        was_training = self.training
        self.eval()
        outs = []
        try:
            for i in range(0, len(arr), batch_size):
                xb = arr[i : i + batch_size]
                if raw_in and scaler is not None:
                    xb = scaler.transform(xb.cpu().numpy() if torch.is_tensor(xb) else xb)
                out = fn(torch.as_tensor(xb).to(dtype=p.dtype, device=p.device)).cpu().numpy()
                outs.append(scaler.inverse_transform(out) if raw_out and scaler else out)
        finally:
            self.train(was_training)
        return layout.unfold(np.concatenate(outs))

    # on already-scaled data (what the model computes on); X as rows (N, D_in) or images
    # (N, H, W) / (N, C, H, W) of the model's image shape, given back in that shape
    def encode_scaled(self, X: np.ndarray) -> np.ndarray:
        """Codes Z for already-scaled data X (N, D_in) -> (N, D_latent)."""
        return self._batched(self.encode, X, self.config.input_dim)

    def decode_scaled(self, Z: np.ndarray, shape=None) -> np.ndarray:
        """Reconstructions in the scaled space from codes (N, D_latent) -> (N, D_in); with
        ``shape`` as :meth:`decode_numpy`."""
        return self._unfold(self._batched(self.decode, Z, self.config.latent_dim), shape)

    def reconstruct_scaled(self, X: np.ndarray) -> np.ndarray:
        """X_hat in the scaled space for already-scaled data X, in X's shape."""
        return self._batched(self.reconstruct, X, self.config.input_dim)

    # on data in their own units: the stored scaler (if any) applied and undone
    def encode_numpy(self, X: np.ndarray, *, units: str = "check") -> np.ndarray:
        """Codes Z (N, D_latent) of raw data X: the model's scaler is applied first.

        X is rows (N, D_in) or images of the model's image shape, (N, H, W) (one channel) or
        (N, C, H, W); any other shape is refused in one line naming both. A model without a
        scaler (one built in Python) takes X as it is, as :meth:`encode_scaled` does; a model
        loaded from a run scales X as training did, after checking that X is in the training
        data's units (``units``: "check", "as-is" to skip the check, "convert" to rescale
        images; :meth:`aekit.data.units.Units.check`).
        """
        X = self._in_units(X, units)
        return self._batched(self.encode, X, self.config.input_dim, raw_in=True)

    def _in_units(self, X, mode: str):
        """X checked against (or converted to) the training data's units, when recorded."""
        if self.units is None or torch.is_tensor(X):
            return X
        arr = np.asarray(X)
        if arr.dtype.kind not in "biuf" or arr.size == 0:
            return X  # the shape check in _batched says what is wrong
        if arr.ndim < 2 or int(np.prod(arr.shape[1:])) != self.config.input_dim:
            return X  # the shape check in _batched says what is wrong
        if arr.ndim != 2 and not self.units.image:
            return X
        return self.units.check(arr, mode=mode)

    def decode_numpy(self, Z: np.ndarray, shape=None) -> np.ndarray:
        """Decodings of codes Z (N, D_latent) in the data's own units (the scaler undone).

        Rows (N, D_in) by default, for every model: codes carry no shape. ``shape`` folds
        them into images: a sample's shape, ``(H, W)`` or ``(C, H, W)``, checked against
        the model's image shape, or ``"image"`` for the model's own (C, H, W), e.g.
        ``model.decode_numpy(Z, shape=(28, 28))`` -> (N, 28, 28).
        """
        return self._unfold(
            self._batched(self.decode, Z, self.config.latent_dim, raw_out=True), shape
        )

    def reconstruct_numpy(self, X: np.ndarray, *, units: str = "check") -> np.ndarray:
        """X_hat of raw data X, in the data's own units and in X's shape: (N, H, W) images
        give (N, H, W), (N, C, H, W) give (N, C, H, W), rows (N, D_in) give rows (``units``
        as in :meth:`encode_numpy`; converted input comes back in the model's units)."""
        X = self._in_units(X, units)
        return self._batched(self.reconstruct, X, self.config.input_dim, raw_in=True, raw_out=True)

    def _unfold(self, rows: np.ndarray, shape) -> np.ndarray:
        """Decoded rows in the sample ``shape`` (None: rows; "image": the model's image)."""
        if shape is None:
            return rows
        image_shape = self.config.image_shape
        if isinstance(shape, str) and shape == "image":
            if image_shape is None:
                raise DataError(
                    f"model {self.name!r} has no image shape; pass shape=(H, W) or (C, H, W) "
                    "of its images, or leave shape out for rows"
                )
            shape = image_shape
        layout = sample_layout(shape, width=self.config.input_dim, image_shape=image_shape)
        return layout.unfold(rows)
