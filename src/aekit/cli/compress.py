"""``aekit compress`` and ``aekit decompress``: images to one .aek file and back."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ._common import FORMATTER, data_args, device_arg, reading_kwargs, split_arg

COMPRESS_EXAMPLE = """examples:
  aekit train --data mnist --model compress --out runs/codec
  aekit compress runs/codec --data mnist --out images.aek
  aekit compress runs/codec --data mnist --out images.aek --step 8    (every pixel within 4)
  aekit compress runs/codec --data mnist --out images.aek --step 1    (lossless for 8-bit images)
"""
DECOMPRESS_EXAMPLE = """examples:
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


def run_compress(args) -> int:
    from ..apps.compression import compression_report
    from ..apps.evaluate import load_run_data
    from ..io.files import atomic_write

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


def run_decompress(args) -> int:
    from ..apps.compression import compression_report, decompress, file_names
    from ..apps.evaluate import load_run_data
    from ..io import checkpoint
    from ..io.files import write_array
    from ..training.strategy import resolve_device

    out = Path(args.out)
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {args.file}: {e.strerror or e}") from None
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
    from ..apps.compression import pixel_max

    return float(ds.max_value) if getattr(ds, "max_value", None) else pixel_max(model, ds.X)


def write_pngs(folder: Path, X_hat, model, names=None) -> None:
    """One PNG per row (C = 1 grey, C = 3 RGB; 16-bit for 16-bit grey), under the images'
    own names when the file carries them, else 00000.png, 00001.png, ...; the folder appears
    when complete (:func:`aekit.io.images.write_image_folder`)."""
    from ..apps.compression import image_shape, pixel_max
    from ..io.images import write_image_folder

    write_image_folder(folder, X_hat, image_shape(model), pixel_max(model), names)


def _print_report(report, json_path: str | None) -> None:
    for line in report.lines():
        print(line)
    if json_path:
        from ..io.files import write_json

        write_json(json_path, report.to_dict())
        print(f"wrote {json_path}")
