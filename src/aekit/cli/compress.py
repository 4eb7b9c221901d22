"""``aekit compress`` and ``aekit decompress``: images to one .aek file and back."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ._common import FORMATTER, data_args, device_arg, reading_kwargs, split_arg

COMPRESS_EXAMPLE = """examples:
  aekit train --data photos/ --model codec --out runs/codec    (any size, grey or colour)
  aekit compress runs/codec --data photos/ --out photos.aek --bpp 0.5   (each image <= 0.5 bpp)
  aekit compress runs/codec --data photos/ --out photos.aek --psnr 32   (each image >= 32 dB)
  aekit compress runs/codec --data photos/ --out photos.aek --quality 3 (the rate knob, 0..7)
  aekit train --data mnist --model compress --out runs/codec
  aekit compress runs/codec --data mnist --out images.aek
  aekit compress runs/codec --data mnist --out images.aek --step 8    (every pixel within 4)
  aekit compress runs/codec --data mnist --out images.aek --step 1    (lossless for 8-bit images)
  aekit train --data mnist --model lossless --scale image --out runs/ll   (a learned context model)
  aekit compress runs/ll --data mnist --out images.aek --step 1      (lossless; --step 4: within 2)
"""
DECOMPRESS_EXAMPLE = """examples:
  aekit train --data photos/ --model codec --out runs/codec    (any size, grey or colour)
  aekit compress runs/codec --data photos/ --out photos.aek --bpp 0.5   (each image <= 0.5 bpp)
  aekit compress runs/codec --data photos/ --out photos.aek --psnr 32   (each image >= 32 dB)
  aekit compress runs/codec --data photos/ --out photos.aek --quality 3 (the rate knob, 0..7)
  aekit decompress runs/codec images.aek --out x.npy
  aekit decompress runs/codec images.aek --out pngs/ --data mnist   (PNGs, PSNR/SSIM vs mnist)
"""


def add_parsers(sub) -> None:
    c = sub.add_parser(
        "compress",
        help="compress images with a run's quantised-latent model into one .aek file",
        epilog=COMPRESS_EXAMPLE,
        formatter_class=FORMATTER,
    )
    c.add_argument("run", help="run directory of a model with a quantised latent")
    data_args(c, default=None)
    split_arg(c)
    c.add_argument("--out", required=True, help="the compressed file to write (.aek)")
    c.add_argument(
        "--step",
        type=float,
        help="add a residual layer: every value within step/2 of the original, in the data's "
        "units (1 = lossless for integer pixels); default: the code alone, the model's quality",
    )
    target = c.add_mutually_exclusive_group()
    target.add_argument(
        "--quality",
        type=float,
        metavar="Q",
        help="a spatial codec's rate knob, 0 (lowest rate) to its number of lambdas - 1 "
        "(default: the highest)",
    )
    target.add_argument(
        "--bpp",
        type=float,
        metavar="B",
        help="a spatial codec: each image at most B bits per pixel",
    )
    target.add_argument(
        "--psnr", type=float, metavar="P", help="a spatial codec: each image at least P dB"
    )
    c.add_argument("--json", help="also write the report (bytes, bpp, PSNR, SSIM, speed) here")
    device_arg(c)
    c.set_defaults(func=run_compress)

    d = sub.add_parser(
        "decompress",
        help="decode a .aek file with the run that wrote it",
        epilog=DECOMPRESS_EXAMPLE,
        formatter_class=FORMATTER,
    )
    d.add_argument("run", help="run directory of the model that compressed the file")
    d.add_argument("file", help="the .aek file")
    d.add_argument(
        "--out", required=True, help="x.npy or x.csv (rows), or a folder for one PNG per image"
    )
    data_args(d, default=None, shown="none: no quality report")
    split_arg(d)
    d.add_argument("--json", help="also write the report here")
    device_arg(d)
    d.set_defaults(func=run_decompress)


def _spatial(args):
    """The run's model when it is a spatial codec or a context model, else None."""
    from ..apps.codec import is_spatial
    from ..apps.lossless import is_context
    from ..io import checkpoint
    from ..training.devices import resolve_device

    model = checkpoint.load(args.run).to(resolve_device(args.device))
    return model if is_spatial(model) or is_context(model) else None


def _codec_images(args, model):
    """(images in their units, names, format maximum): image files each at its own size, or
    a data set's images in their shape."""
    from ..apps.evaluate import load_run_data
    from ..data.images import is_image_source, read_image_list

    if args.data is not None and is_image_source(args.data):
        color = getattr(args, "color", None)
        images, names, _, top = read_image_list(args.data, color=color, limit=args.limit)
        return images, names, top
    _, _, ds, _ = load_run_data(
        args.run, args.data, data_dir=args.data_dir, split=args.split, limit=args.limit,
        device=args.device, **reading_kwargs(args),
    )  # fmt: skip
    return ds.X.reshape(len(ds.X), *model.config.image_shape), ds.files, ds.max_value


def run_compress(args) -> int:
    from ..apps.compression_report import compression_report
    from ..apps.evaluate import load_run_data
    from ..io.files import atomic_write

    model = _spatial(args)
    if model is not None:
        return _compress_spatial(args, model)
    if any(v is not None for v in (args.quality, args.bpp, args.psnr)):
        raise ConfigError(
            "--quality, --bpp and --psnr choose a spatial codec's rate (a run of --model codec); "
            "this run's rate was fixed when it was trained"
        )

    model, _, ds, _ = load_run_data(
        args.run, args.data, data_dir=args.data_dir, split=args.split, limit=args.limit,
        device=args.device, **reading_kwargs(args),
    )  # fmt: skip
    report, data, _ = compression_report(
        model, ds.X, data_range=_data_range(model, ds), step=args.step, names=ds.files
    )
    atomic_write(args.out, lambda tmp: Path(tmp).write_bytes(data))
    print(f"wrote {args.out}")
    _print_report(report, args.json)
    return 0


def _compress_spatial(args, model) -> int:
    from ..apps.codec import codec_report
    from ..apps.lossless import is_context, lossless_report
    from ..io.files import atomic_write

    if is_context(model):
        if any(v is not None for v in (args.quality, args.bpp, args.psnr)):
            raise ConfigError("a context model (--model lossless) takes --step only")
        images, names, _ = _codec_images(args, model)
        report, data = lossless_report(model, images, step=args.step, names=names)
    elif args.step is not None:
        raise ConfigError("--step (the residual layer) is not available for a spatial codec yet")
    else:
        images, names, top = _codec_images(args, model)
        report, data = codec_report(
            model, images, names=names, max_value=top, quality=args.quality, bpp=args.bpp,
            psnr=args.psnr,
        )  # fmt: skip
    atomic_write(args.out, lambda tmp: Path(tmp).write_bytes(data))
    print(f"wrote {args.out}")
    _print_report(report, args.json)
    return 0


def _decompress_spatial(args, model, data: bytes) -> int:
    from ..apps import lossless
    from ..apps.codec import codec_report, decompress_images
    from ..apps.compression import file_names
    from ..io.files import write_array
    from ..io.images import write_images

    out = Path(args.out)
    if out.suffix and out.suffix not in (".npy",):
        raise ConfigError(f"cannot write {out}: use a .npy file, or a folder for PNGs")
    context = lossless.is_context(model)
    decoded = (lossless.decompress_images if context else decompress_images)(model, data)
    listed = list(decoded)
    if out.suffix == ".npy":
        if isinstance(decoded, list):
            raise ConfigError("the images differ in size: decompress them into a folder")
        write_array(out, decoded)
    else:
        top = 1.0 / float(model.scaler.scale[0]) if model.scaler is not None else 1.0
        top = float(model.levels - 1) if context else top
        shaped = [v if v.ndim == 3 else v[None] for v in listed]
        write_images(out, shaped, top, file_names(data))
    print(f"wrote {len(listed)} images to {out}")
    if args.data is not None:
        images, _, top = _codec_images(args, model)
        if context:
            report, _ = lossless.lossless_report(model, images, data=data)
        else:
            report, _ = codec_report(model, images, data=data, max_value=top)
        _print_report(report, args.json)
    return 0


def run_decompress(args) -> int:
    from ..apps.compression import decompress, file_names
    from ..apps.compression_report import compression_report
    from ..apps.evaluate import load_run_data
    from ..io import checkpoint
    from ..io.files import write_array
    from ..training.devices import resolve_device

    out = Path(args.out)
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {args.file}: {e.strerror or e}") from None
    spatial = _spatial(args)
    if spatial is not None:
        return _decompress_spatial(args, spatial, data)
    if args.data is not None:
        model, _, ds, _ = load_run_data(
            args.run, args.data, data_dir=args.data_dir, split=args.split, limit=args.limit,
            device=args.device, **reading_kwargs(args),
        )  # fmt: skip
        report, _, X_hat = compression_report(model, ds.X, data, _data_range(model, ds))
    else:
        model = checkpoint.load(args.run).to(resolve_device(args.device))
        report, X_hat = None, decompress(model, data)
    if out.suffix in (".npy", ".csv"):  # a .npy keeps the shape compress was given
        write_array(out, X_hat if out.suffix == ".npy" else X_hat.reshape(len(X_hat), -1))
    elif out.suffix:
        raise ConfigError(f"cannot write {out}: use a .npy or .csv file, or a folder for PNGs")
    else:
        write_pngs(out, X_hat, model, file_names(data))
    print(f"wrote {len(X_hat)} images to {out}")
    if report is not None:
        _print_report(report, args.json)
    return 0


def _data_range(model, ds) -> float:
    """The PSNR peak: the image format's maximum (255 for MNIST), else the model's."""
    from ..apps.compression_report import pixel_max

    return float(ds.max_value) if getattr(ds, "max_value", None) else pixel_max(model, ds.X)


def write_pngs(folder: Path, X_hat, model, names=None) -> None:
    """One PNG per row (C = 1 grey, C = 3 RGB; 16-bit for 16-bit grey), under the images'
    own names when the file carries them, else 00000.png, 00001.png, ...; the folder appears
    when complete (:func:`aekit.io.images.write_image_folder`)."""
    from ..apps.compression import image_shape
    from ..apps.compression_report import pixel_max
    from ..io.images import write_image_folder

    write_image_folder(folder, X_hat, image_shape(model), pixel_max(model), names)


def _print_report(report, json_path: str | None) -> None:
    for line in report.lines():
        print(line)
    if json_path:
        from ..io.files import write_json

        write_json(json_path, report.to_dict())
        print(f"wrote {json_path}")
