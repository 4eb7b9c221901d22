"""The small MNIST classifier whose features measure generated images (benchmarks only).

A conv net, Conv(1->32, 3) ReLU MaxPool, Conv(32->64, 3) ReLU MaxPool, Linear(3136 -> 128) ReLU
(the penultimate features, 128-D), Linear(128 -> 10); trained once with aekit's own loop
(``aekit.training.fit``) and cached as safetensors + JSON metadata in
``benchmarks/results/classifier.safetensors``; later runs load it (no pickle anywhere).

aekit's loop carries one tensor per batch and calls ``model(x)`` for a record with "loss", so
the training rows are images with their label as one extra last column: ``forward`` splits it
off and returns the cross-entropy.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from _common import RESULTS
from torch import nn

import aekit.training as training
from aekit.io.checkpoint import read_tensors, save_tensors

PATH = RESULTS / "classifier.safetensors"
RECIPE = {
    "channels": [32, 64],
    "width": 128,
    "batch_size": 128,
    # three epochs at 1e-3, 1e-3, 2e-4 reached 98.95%; a fourth and a slower decay settle it
    "lr_per_epoch": [1e-3, 1e-3, 5e-4, 1e-4],
}


class _LrSchedule(training.Callback):
    def on_epoch_start(self, loop, epoch: int) -> None:
        for group in loop.optimizer.param_groups:
            group["lr"] = RECIPE["lr_per_epoch"][epoch]


class Classifier(nn.Module):
    """28x28 digits (N, 784) in [0, 1] -> logits (N, 10); :meth:`features` is the 128-D layer."""

    def __init__(self, channels=(32, 64), width: int = 128) -> None:
        super().__init__()
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, width), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(width, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 784) -> (N, 128)
        return self.body(x.reshape(-1, 1, 28, 28))

    def forward(self, xy: torch.Tensor) -> dict[str, torch.Tensor]:
        """xy (N, 785): the image rows with the label as the last column -> {"loss": CE}."""
        logits = self.head(self.features(xy[:, :-1]))
        return {"loss": nn.functional.cross_entropy(logits, xy[:, -1].long())}

    @torch.no_grad()
    def embed(self, X: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, 128) float64, class probabilities (N, 10)) of images X (N, 784)."""
        self.eval()
        feats, probs = [], []
        for i in range(0, len(X), batch_size):
            f = self.features(torch.as_tensor(X[i : i + batch_size], dtype=torch.float32))
            feats.append(f.double().numpy())
            probs.append(torch.softmax(self.head(f), 1).double().numpy())
        return np.concatenate(feats), np.concatenate(probs)


def accuracy(model: Classifier, X: np.ndarray, y: np.ndarray) -> float:
    return float((model.embed(X)[1].argmax(1) == y).mean())


def load_or_train(X, y, X_test, y_test, log=print) -> tuple[Classifier, dict]:
    """The cached classifier when its recipe matches, else trained now (and cached)."""
    model = Classifier(RECIPE["channels"], RECIPE["width"])
    if PATH.is_file():
        tensors, meta = read_tensors(PATH)
        info = json.loads(meta["info"])
        if info["recipe"] == RECIPE:
            model.load_state_dict(tensors)
            log(f"classifier: cached ({PATH.name}), test accuracy {info['test_accuracy']:.4f}")
            return model.eval(), {**info, "cached": True}
    torch.manual_seed(0)
    xy = np.concatenate([X, y[:, None].astype(np.float32)], axis=1)
    epochs = len(RECIPE["lr_per_epoch"])
    config = training.TrainConfig(epochs=epochs, batch_size=RECIPE["batch_size"], seed=0)
    t0 = time.perf_counter()
    training.fit(model, xy, config=config, device="cpu", callbacks=[_LrSchedule()])
    seconds = time.perf_counter() - t0
    acc = accuracy(model, X_test, y_test)
    info = {"recipe": RECIPE, "test_accuracy": acc, "train_seconds": seconds}
    save_tensors(PATH, model.state_dict(), {"info": json.dumps(info)})
    log(f"classifier: trained in {seconds:.0f} s, test accuracy {acc:.4f}")
    return model.eval(), {**info, "cached": False}
