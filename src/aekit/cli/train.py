"""``aekit train``: flags -> model and training configs -> :func:`aekit.apps.train.train`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError
from ._common import FORMATTER, data_args, device_arg, floats_arg, noise_arg, sizes_arg

TRAIN_EXAMPLE = """example:
  aekit train --data digits --latent-dim 8 --epochs 30 --out runs/digits
  aekit train --data mnist --data-dir ../shared/data --hidden 512,256 --latent-dim 16 \\
      --epochs 20 --batch-size 256 --out runs/mnist
  aekit train --resume --out runs/mnist --epochs 40     # continue (or extend) a run
  aekit train --data mnist --model vae --latent-dim 32 --kl-warmup 10 --out runs/vae
  aekit train --data mnist --model conv --sparse-kl 0.05 --noise mask:0.25 --out runs/c
  aekit train --data clean/ --model dncnn --noise gaussian:25/255 --out runs/dn   # aekit denoise
  aekit train --data noisy/ --model blindspot --out runs/n2s     # from noisy images alone
  aekit train --data noisy/ --model dncnn --self-supervised sure --noise gaussian:25/255 \
      --out runs/sure                                  # noisy images alone, noise known
  aekit train --data digits --epochs 20 --out runs/d --tensorboard tb/d   # tensorboard --logdir tb
  aekit train --data digits --epochs 20 --out runs/d --mlflow-uri sqlite:///mlflow.db
"""


def add_parser(sub) -> None:
    from ..functional.losses import LOSSES
    from ..nn import ACTIVATIONS, MODELS
    from ..training import OPTIMIZERS, PRECISIONS

    t = sub.add_parser(
        "train",
        help="train a model and write a run directory",
        epilog=TRAIN_EXAMPLE + presets(MODELS),
        formatter_class=FORMATTER,
    )
    data_args(t, default=None, shown="digits", units=False)
    t.add_argument(
        "--image-shape",
        type=sizes_arg,
        metavar="C,H,W",
        help="fold each row of a data file into a C x H x W image (conv models); .npy files "
        "of shape (N, H, W) or (N, C, H, W) are images already",
    )
    t.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="read a .npy or .parquet file (or a folder of .npy or .parquet shards) block by "
        "block instead of loading it (default: for folders and files over 1 GiB)",
    )
    t.add_argument(
        "--model",
        choices=sorted(MODELS),
        help="preset; the flags below combine its parts (default: dense)",
    )
    t.add_argument("--latent-dim", type=int, help="code size (default: the model's, 16)")
    t.add_argument("--hidden", type=sizes_arg, help="encoder hidden sizes, e.g. 512,256 ('' none)")
    t.add_argument("--activation", choices=ACTIVATIONS, help="hidden-layer activation")
    t.add_argument("--latent-activation", choices=ACTIVATIONS, help="code-layer activation")
    t.add_argument(
        "--output-activation",
        choices=("auto", "sigmoid", "identity"),
        default="auto",
        help="auto: sigmoid for data in [0, 1], else identity",
    )
    t.add_argument(
        "--tied",
        action="store_true",
        default=None,
        help="decoder weights = encoder weights transposed",
    )
    t.add_argument("--loss", choices=LOSSES, help="reconstruction loss (ssim: images)")
    family_args(t)
    codec_args(t)
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="(default: adam)")
    t.add_argument(
        "--engine",
        choices=("torch", "numpy"),
        help="torch (default), or numpy: the seed's matrix engine (aekit.scratch), for dense "
        "models whose hidden and code layers share one activation",
    )
    t.add_argument("--lr", type=float, help="learning rate (default: 0.001)")
    t.add_argument("--batch-size", type=int, help="(default: 128)")
    t.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the training data (default: as many as 5,000 optimiser steps take, "
        "10 to 2,000, with early stopping on the validation split)",
    )
    t.add_argument("--seed", type=int, help="(default: 0)")
    t.add_argument(
        "--val-fraction",
        type=float,
        help="share of the data held out for validation (default: 0.1)",
    )
    t.add_argument(
        "--patch",
        type=int,
        metavar="P",
        help="fully convolutional models on image files: train on random P x P crops, new "
        "each epoch, holding whole images out for validation (default: none, whole images; "
        "images of several sizes: crops of their smallest side, at most 64)",
    )
    t.add_argument(
        "--patience",
        type=int,
        help="stop after this many epochs without validation improvement (default: a tenth "
        "of the default budget; 0, off, when --epochs is given)",
    )
    t.add_argument(
        "--init",
        choices=("auto", "pca", "random"),
        help="auto (default): start from PCA's solution where the model can represent it "
        "exactly (dense, linear code, squared error; the output is then linear); pca: insist; "
        "random: PyTorch's initialisation",
    )
    t.add_argument(
        "--scale",
        choices=("image", "minmax", "standard", "none"),
        help="data scaling (default: image for images, minmax for tables)",
    )
    t.add_argument("--out", help="run directory (default: runs/<data>-<model>-<time>)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out; --epochs, --lr, --patience, --cuda-graphs and the "
        "data's location may change, other flags must match the run",
    )
    t.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar, summary or hints: only where the run went, notices and warnings",
    )
    t.add_argument(
        "--report", action="store_true", help="write RUN/report.html at the end (aekit report)"
    )
    device_arg(t)
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="fp32 (default), tf32 (CUDA) or bf16 (autocast); stored with the run",
    )
    t.add_argument(
        "--cuda-graphs",
        choices=("on", "off"),
        default=None,
        help="on (default): capture the step in CUDA graphs on a CUDA device, falling back to "
        "eager steps with a warning when a capture fails or replays to another loss; off: "
        "every step eager. May change on --resume",
    )
    logger_args(t)
    t.set_defaults(func=run)


def logger_args(t: argparse.ArgumentParser) -> None:
    """Flags of the metric loggers (optional extras: aekit[tensorboard], aekit[mlflow])."""
    g = t.add_argument_group(
        "metrics in TensorBoard / MLflow (optional extras; they continue on --resume)"
    )
    g.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write TensorBoard events to DIR: every loss term per epoch (step = epoch) and "
        "reconstructions of validation images for image data; pip install aekit[tensorboard]",
    )
    g.add_argument(
        "--mlflow",
        action="store_true",
        help="log to MLflow's default tracking URI: the settings as params, metrics per "
        "epoch, the run directory as artifacts at the end; pip install aekit[mlflow]",
    )
    g.add_argument("--mlflow-uri", metavar="URI", help="the MLflow tracking URI (implies --mlflow)")
    g.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        help="the MLflow experiment (implies --mlflow; default: MLflow's Default)",
    )


def presets(models) -> str:
    rows = "".join(f"  {name:<12} {spec.summary}\n" for name, spec in sorted(models.items()))
    return "\nmodels (--model):\n" + rows


def family_args(t: argparse.ArgumentParser) -> None:
    """Flags that add a latent kind, penalties and a corruption to any --model."""
    g = t.add_argument_group("autoencoder family (combine freely; see aekit.nn.config.ModelConfig)")
    g.add_argument("--latent", choices=("deterministic", "gaussian"), help="gaussian: a VAE")
    g.add_argument("--channels", type=sizes_arg, help="conv feature maps, e.g. 32,64")
    g.add_argument("--sparse-kl", type=float, metavar="RHO", help="KL sparsity to target rate RHO")
    g.add_argument(
        "--sparse-weight", type=float, metavar="L", help="weight of --sparse-kl (default: 1)"
    )
    g.add_argument("--l1", type=float, metavar="L", help="L1 penalty on the code, weight L")
    g.add_argument("--contractive", type=float, metavar="L", help="L ||J_f(x)||_F^2 penalty")
    g.add_argument(
        "--contractive-method",
        choices=("auto", "closed", "exact", "projection"),
        help="how the Jacobian norm is computed (default: auto)",
    )
    g.add_argument(
        "--noise",
        type=noise_arg,
        metavar="KIND:LEVEL[:clip]",
        help="denoising: gaussian:SIGMA, poisson:PEAK, mask:P or salt-pepper:P (:clip to "
        "[0, 1]); levels are in the scaled space (images: pixel / max, so gaussian:25/255 is "
        "sigma 25 of 255); a range gaussian:0.02-0.2 draws each sample's level from it",
    )
    g.add_argument(
        "--blindspot",
        type=float,
        metavar="P",
        help="self-supervised denoising from noisy data alone: mask this share of pixels and "
        "score only them (the blindspot model's default: 0.05)",
    )
    g.add_argument(
        "--self-supervised",
        choices=("sure",),
        help="sure: train from noisy data alone whose noise --noise states (gaussian:SIGMA or "
        "poisson:PEAK, in the scaled space), scored by Stein's unbiased estimate of the "
        "squared error to the unseen clean data; nothing is added to the data",
    )
    g.add_argument(
        "--kl-weight",
        "--beta",
        dest="kl_weight",
        type=float,
        metavar="W",
        help="weight of a Gaussian latent's KL term (the beta of a beta-VAE; default 1)",
    )
    g.add_argument(
        "--rate-weight",
        type=float,
        metavar="L",
        help="rate weight lambda of a quantised latent (--model compress): D + L x bits per "
        "pixel, larger for fewer bits (default 1)",
    )
    g.add_argument("--kl-warmup", type=int, metavar="EPOCHS", help="ramp the KL weight up")
    g.add_argument("--free-bits", type=float, metavar="F", help="least KL charged per unit")
    g.add_argument("--iwae", type=int, metavar="K", help="train the IWAE bound with K samples")
    g.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian", "laplace"),
        help="p(x|z) of a Gaussian latent (= --loss bce, mse, mae)",
    )


def codec_args(t: argparse.ArgumentParser) -> None:
    """Flags of the spatial codec (--model codec)."""
    g = t.add_argument_group(
        "spatial codec (--model codec; --channels N sets its transforms' maps)"
    )
    g.add_argument(
        "--stages", type=int, metavar="S", help="stride-2 layers: code grid = image / 2^S"
    )
    g.add_argument("--hyper-channels", type=int, metavar="Z", help="side information's channels")
    g.add_argument(
        "--lambdas",
        type=floats_arg,
        metavar="L1,L2,...",
        help="the rates one model is trained for, increasing (default: CompressAI's eight, "
        "0.0018 to 0.18: about 0.1 to 2 bpp on photos)",
    )
    g.add_argument(
        "--transform",
        choices=("dct", "gdn"),
        help="dct (default): a block transform that starts at the DCT, near JPEG after CPU "
        "minutes; gdn: GDN transforms (Balle et al.), for long training on a GPU",
    )
    g.add_argument(
        "--post-channels", type=int, metavar="F", help="dct: the post-filter's maps (0: none)"
    )
    g.add_argument(
        "--gain-prior", action="store_const", const=True, default=None,
        help="the hyperprior's mean and scale follow the knob's gain, its start fitted to the "
        "data (opt-in: better at the lowest rates, worse above about 0.7 bpp on photographs)",
    )  # fmt: skip


def run(args) -> int:
    from ..training.distributed import leave_together

    code = _train_and_report(args)
    # under torchrun: no rank leaves while rank 0 still writes and reports (errors skip this)
    leave_together()
    return code


def _train_and_report(args) -> int:
    from ..apps.train import train

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUN, the run directory to continue")
    callbacks = loggers(args)  # a missing extra fails here, before anything is written
    if args.out is None:
        stem = Path(str(args.data or "digits")).stem
        args.out = f"runs/{stem}-{args.model or 'dense'}-{time.strftime('%Y%m%d-%H%M%S')}"
    model_options = {
        "latent_dim": args.latent_dim,
        "hidden": args.hidden,
        "activation": args.activation,
        "latent_activation": args.latent_activation,
        "tied": args.tied,
        "loss": args.loss,
        "output_activation": args.output_activation,
        "channels": args.channels,
        "stages": args.stages,
        "hyper_channels": args.hyper_channels,
        "lambdas": args.lambdas,
        "transform": args.transform,
        "post_channels": args.post_channels,
        "gain_prior": args.gain_prior,
        **_family_options(args),
    }
    if args.engine == "numpy" and args.latent_activation is None and not args.resume:
        # the NumPy engine applies one activation to the hidden and code layers
        model_options["latent_activation"] = args.activation or "relu"
    train_options = {
        "epochs": args.epochs,  # None: the default budget (new run) or the run's (resume)
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "seed": args.seed,
        "patience": args.patience,
        "engine": args.engine,
        "precision": args.precision,
        "cuda_graphs": None if args.cuda_graphs is None else args.cuda_graphs == "on",
    }
    result = train(
        args.data,
        out=args.out,
        model=args.model,
        data_dir=args.data_dir,
        limit=args.limit,
        scale=args.scale,
        val_fraction=args.val_fraction,
        image_shape=args.image_shape or None,
        color=args.color,
        resize=args.resize,
        patch=args.patch,
        stream=args.stream,
        resume=args.resume,
        progress=not args.quiet,
        device=args.device,
        init=args.init,
        model_options=model_options,
        callbacks=callbacks,
        **train_options,
    )
    state = result.state
    from ..training.distributed import is_writer

    if not is_writer():  # under torchrun, rank 0 reports
        return 0
    last = state.history[-1] if state.history else {}
    summary = ", ".join(f"{k} {v:.5g}" for k, v in last.items() if k.endswith("loss"))
    if not args.quiet:
        print(f"trained {state.epoch} epochs ({summary}); best epoch {state.best_epoch}")
    if result.check is not None and (result.check["worse_than_pca"] or not args.quiet):
        print(pca_line(result.check))  # a warning is said even when quiet
    if result.baseline is not None and not result.baseline["held_out"]:
        print(refit_line(result.baseline))  # validation rows are no longer held out: always said
    print(f"run written to {result.out}")
    if args.report:
        from ..views.report import build_report

        print(f"report written to {build_report(result.out)}")
    if args.quiet:
        return 0
    if result.model.has_code:
        then = f"aekit encode {result.out} --out codes.npy   (the codes of your data)"
    elif getattr(getattr(result.model, "latent", None), "spatial", False):
        then = f"aekit compress {result.out} --data IMAGES --out images.aek --bpp 0.5"
    else:
        then = f"aekit denoise {result.out} --data NOISY --out CLEAN   (denoise your images)"
    print(
        f"next: aekit eval {result.out}   (reconstruction metrics on held-out data)\n      {then}"
    )
    return 0


def loggers(args) -> list:
    """The logger callbacks the flags ask for (aekit.training.loggers)."""
    from ..training.loggers import MLflowLogger, TensorBoardLogger

    made: list = []
    if args.tensorboard is not None:
        if not str(args.tensorboard).strip():
            raise ConfigError("--tensorboard needs a folder, e.g. --tensorboard tb/my-run")
        made.append(TensorBoardLogger(args.tensorboard))
    if args.mlflow or args.mlflow_uri or args.mlflow_experiment:
        made.append(MLflowLogger(args.mlflow_uri, args.mlflow_experiment))
    return made


def pca_line(check: dict) -> str:
    """One line: the held-out MSE in the data's units beside PCA's at the same code size."""
    k, mse, pca = check["pca_components"], check["mse"], check["pca_mse"]
    said = f"held-out MSE {mse:.5g} vs PCA-{k} {pca:.5g} (data units, ratio {check['ratio']:.3f})"
    if check["worse_than_pca"]:
        advice = check.get("advice")  # None: --init pca is refused by this model, or was used
        tried = f"try {advice}, more data or another --epochs" if advice else "see"
        return (
            f"warning: {said}: the model is worse than PCA with {k} components on held-out "
            f"data; {tried}{' (see' if advice else ''} summary.json{')' if advice else ''}"
        )
    return said


def refit_line(base: dict) -> str:
    """One line: the kept PCA start, refitted on every row, beside PCA of those rows."""
    return (
        f"kept the PCA start, refitted on all {base['n_fit']:,} rows (validation rows "
        f"included): MSE {base['mse']:.5g} vs PCA-{base['pca_components']} fitted on the same "
        f"rows {base['pca_mse']:.5g} (data units, ratio {base['ratio']:.3f})"
    )


def _family_options(args) -> dict:
    from .options import family_options

    return family_options(
        args.model or "dense",
        latent=args.latent,
        sparse_kl=args.sparse_kl,
        sparse_weight=args.sparse_weight,
        l1=args.l1,
        contractive=args.contractive,
        contractive_method=args.contractive_method,
        noise=args.noise,
        blindspot=args.blindspot,
        self_supervised=args.self_supervised,
        kl_weight=args.kl_weight,
        rate_weight=args.rate_weight,
        kl_warmup=args.kl_warmup,
        free_bits=args.free_bits,
        iwae=args.iwae,
        likelihood=args.likelihood,
        loss=args.loss,
        latent_activation=args.latent_activation,
    )
