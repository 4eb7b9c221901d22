"""ONNX export: a run's encoder, decoder and whole autoencoder, for runtimes without PyTorch.

Each graph takes and gives data in the data's own units: the stored scaler is part of the
graph (``(x - offset) * scale`` before the encoder, its inverse after the decoder), so a user
of the file needs nothing else. The batch axis is dynamic. The model's record (name, config,
scaler, aekit version) goes into the file's metadata (``metadata_props``). A Gaussian latent
exports its posterior mean (the deterministic code), as ``encode`` does.

    aekit export RUN --format onnx --out model.onnx
    # -> model.onnx (x -> x_hat), model.encoder.onnx (x -> z), model.decoder.onnx (z -> x_hat)
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from .files import atomic_write

PARTS = ("autoencoder", "encoder", "decoder")
OPSET = 17


class ScaledPart(nn.Module):
    """One part of a model with the scaler folded in: raw units in and out."""

    def __init__(self, model, part: str) -> None:
        super().__init__()
        self.model, self.part = model, part
        scaler = model.scaler
        offset = scale = None
        if scaler is not None and scaler.offset is not None and scaler.scale is not None:
            offset, scale = scaler.offset, scaler.scale
        dtype = next(model.parameters()).dtype
        self.register_buffer("offset", _vector(offset, dtype, 0.0))
        self.register_buffer("scale", _vector(scale, dtype, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.part != "decoder":
            x = (x - self.offset) * self.scale  # raw -> the scaled space the model computes in
        if self.part == "encoder":
            return self.model.encode(x)
        x_hat = self.model.decode(x) if self.part == "decoder" else self.model.reconstruct(x)
        return x_hat / self.scale + self.offset  # back to the data's units


def _vector(values, dtype, fill: float) -> torch.Tensor:
    if values is None:
        return torch.full((1,), fill, dtype=dtype)
    return torch.as_tensor(values, dtype=dtype).reshape(-1)


def part_paths(out: str | os.PathLike) -> dict[str, Path]:
    """model.onnx -> {autoencoder: model.onnx, encoder: model.encoder.onnx, decoder: ...}."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ConfigError(f"cannot write {out.name}: name an .onnx file, e.g. model.onnx")
    stem = out.with_suffix("")
    return {
        "autoencoder": out,
        "encoder": stem.with_name(stem.name + ".encoder.onnx"),
        "decoder": stem.with_name(stem.name + ".decoder.onnx"),
    }


def export_onnx(model, out: str | os.PathLike, record: dict | None = None) -> dict[str, Path]:
    """Write the three graphs of ``model`` (see :func:`part_paths`); returns where they went."""
    import onnx

    if not model.has_code:
        from ..errors import ConfigError

        raise ConfigError(
            f"model {model.name!r} has no code: ONNX export writes an encoder and a decoder graph"
        )
    model = model.cpu().eval()
    paths = part_paths(out)
    width = {"encoder": model.config.input_dim, "decoder": model.config.latent_dim}
    names = {"encoder": ("x", "z"), "decoder": ("z", "x_hat"), "autoencoder": ("x", "x_hat")}
    meta = {"aekit": json.dumps(record or {}), "units": "the data's own (scaler included)"}
    for part, path in paths.items():
        module = ScaledPart(model, part).eval()
        example = torch.rand(2, width.get(part, model.config.input_dim))
        src, dst = names[part]

        def write(tmp: str, module=module, example=example, src=src, dst=dst) -> None:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
                torch.onnx.export(
                    module,
                    (example,),
                    tmp,
                    input_names=[src],
                    output_names=[dst],
                    dynamic_axes={src: {0: "batch"}, dst: {0: "batch"}},
                    opset_version=OPSET,
                    dynamo=False,
                )
            graph = onnx.load(tmp)
            for key, value in meta.items():
                graph.metadata_props.add(key=key, value=value)
            onnx.checker.check_model(graph)
            onnx.save(graph, tmp)

        atomic_write(path, write)
    return paths
