"""How the image detector's recipe was chosen (issue 23, point 1): prints only.

Never on MNIST's test images. Two selection protocols:

- ``--proto val``: MNIST training images only. For each digit its training images are split
  80/20 (a generator seeded with the digit); the conv autoencoders fit the 80%; the 20% held
  out are the normal rows and 200 random training images of each other digit the anomalies.
- ``--proto fmnist``: Fashion-MNIST one-class, fit on a class's training images, score the
  first 2,000 test images (the class normal, the others anomalous).

``--proto mnist`` runs the same on MNIST's first 2,000 test images (confirmation only; the
detector's own numbers come from anomaly.py). Per class it prints the ROC-AUC of each score:
kNN (mean distance to the 5 nearest training images, pixels in [0, 1]), PCA (90% variance)
reconstruction error, and from ``--members`` conv autoencoders (aekit's conv preset,
``--latent``, MSE, Adam 1e-3, batch 64, ``--epochs``): ``ae`` the squared error summed
raw, ``aeblur`` / ``aeblur2`` the squared error of the residual blurred by a Gaussian of 1 / 2
pixels, ``codeknn`` the mean distance to the 5 nearest training codes (codes divided by
their mean coordinate spread), each standardised on the training images and averaged over
members, and blends: half and half of two standardised scores (``a+b``), or the sum of three.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_images_study.py --proto val --epochs 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import data_dir
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from aekit.data import load_dataset
from aekit.nn import build_model
from aekit.training import TrainConfig, fit


def gaussian(sigma: float, radius: int) -> torch.Tensor:
    g = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    g = np.outer(g, g)
    return torch.tensor(g / g.sum(), dtype=torch.float32)[None, None]


BLURS = {"aeblur": (gaussian(1.0, 3), 3), "aeblur2": (gaussian(2.0, 6), 6)}


def knn(ref, X=None, k=5):
    """Mean distance to the k nearest rows of ref (X None: ref itself, each row left out)."""
    nn = NearestNeighbors(n_neighbors=k).fit(ref)
    return (nn.kneighbors() if X is None else nn.kneighbors(X))[0].mean(1)


def z(s, ref):
    return (s - ref.mean()) / (ref.std() + 1e-12)


@torch.no_grad()
def member_scores(net, X) -> tuple[dict, np.ndarray]:
    """({"ae", "aeblur", "aeblur2"}: (N,) squared errors, codes (N, latent))."""
    out: dict = {k: [] for k in ("ae", *BLURS)}
    codes = []
    for i in range(0, len(X), 1000):
        x = torch.as_tensor(X[i : i + 1000])
        code = net.encode(x)
        r = (net.output(net.decode_logits(code)) - x).reshape(-1, 1, 28, 28)
        out["ae"].append((r**2).flatten(1).sum(1))
        for k, (g, pad) in BLURS.items():
            out[k].append((torch.nn.functional.conv2d(r, g, padding=pad) ** 2).flatten(1).sum(1))
        codes.append(code)
    errors = {k: torch.cat(v).numpy().astype(np.float64) for k, v in out.items()}
    return errors, torch.cat(codes).numpy().astype(np.float64)


def split(proto, c, X_all, y_all, X_test, y_test):
    """(fit rows, scored rows, labels 1 = anomaly) of class c."""
    if proto != "val":
        return X_all[y_all == c], X_test, (y_test != c).astype(int)
    rng = np.random.default_rng(c)
    idx = np.flatnonzero(y_all == c)
    rng.shuffle(idx)
    n = int(0.8 * len(idx))
    others = np.concatenate(
        [rng.choice(np.flatnonzero(y_all == o), 200, replace=False) for o in range(10) if o != c]
    )
    scored = np.concatenate([X_all[idx[n:]], X_all[others]])
    return X_all[idx[:n]], scored, np.r_[np.zeros(len(idx) - n), np.ones(len(others))]


def one_class(args, X_fit, X, y) -> dict:
    scores = {"knn": knn(X_fit, X)}
    knn_tr = knn(X_fit)
    pca = PCA(n_components=0.9, random_state=0).fit(X_fit)
    scores["pca"] = ((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1)
    names = ("ae", *BLURS, "codeknn")
    test = {k: np.zeros(len(X)) for k in names}
    train = {k: np.zeros(len(X_fit)) for k in names}
    config = dict(latent_dim=args.latent, image_shape=(1, 28, 28), loss="mse")
    for m in range(args.members):
        torch.manual_seed(m)
        net = build_model("conv", 784, channels=(32, 64), **config)
        fit(net, X_fit, None, TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, seed=m))
        net.eval()
        (e_t, c_t), (e_f, c_f) = member_scores(net, X), member_scores(net, X_fit)
        for k in ("ae", *BLURS):
            test[k] += z(e_t[k], e_f[k])
            train[k] += z(e_f[k], e_f[k])
        s = c_f.std(0).mean() + 1e-12
        loo = knn(c_f / s)
        test["codeknn"] += z(knn(c_f / s, c_t / s), loo)
        train["codeknn"] += z(loo, loo)
    scores.update(test)

    def half(a, b):
        return 0.5 * z(test[a], train[a]) + 0.5 * z(test[b], train[b])

    scores["ae+knn"] = 0.5 * z(test["ae"], train["ae"]) + 0.5 * z(scores["knn"], knn_tr)
    scores["ae+codeknn"] = half("ae", "codeknn")
    scores["ae+knn+codeknn"] = 2 * scores["ae+knn"] + z(test["codeknn"], train["codeknn"])
    scores["aeblur+codeknn"] = half("aeblur", "codeknn")
    scores["aeblur2+codeknn"] = half("aeblur2", "codeknn")
    return {k: roc_auc_score(y, v) for k, v in scores.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--proto", choices=["val", "fmnist", "mnist"], default="val")
    p.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--members", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(1)
    name = "fashion-mnist" if args.proto == "fmnist" else "mnist"
    train = load_dataset(name, data_dir=data_dir(), split="train")
    X_all = train.X / np.float32(255)
    X_test, y_test = X_all, train.labels
    if args.proto != "val":
        test = load_dataset(name, data_dir=data_dir(), split="test", limit=2000)
        X_test, y_test = test.X / np.float32(255), test.labels
    rows = {}
    for c in args.classes:
        t0 = time.perf_counter()
        rows[c] = one_class(args, *split(args.proto, c, X_all, train.labels, X_test, y_test))
        line = " ".join(f"{k} {v:.4f}" for k, v in rows[c].items())
        print(f"{c} {line} ({time.perf_counter() - t0:.1f} s)", flush=True)
    means = {k: np.mean([r[k] for r in rows.values()]) for k in rows[args.classes[0]]}
    print(f"MEAN {args.proto} {vars(args)}", " ".join(f"{k} {v:.4f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
