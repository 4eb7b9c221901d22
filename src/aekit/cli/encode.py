"""``aekit encode`` and ``aekit reconstruct``: a saved run's codes or reconstructions, to a file."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ._common import FORMATTER, data_args, device_arg, job_kwargs, reading_kwargs, split_arg

EXAMPLES = {
    "encode": "example:\n  aekit encode runs/digits --data digits --out z.npy\n",
    "reconstruct": "example:\n  aekit reconstruct runs/digits --data digits --out x_hat.csv\n",
}
WHAT = {"encode": "codes Z", "reconstruct": "reconstructions, in the data's units"}


def add_parsers(sub) -> None:
    for name in ("encode", "reconstruct"):
        c = sub.add_parser(
            name,
            help=f"write the {WHAT[name]} of data under a run's model",
            epilog=EXAMPLES[name],
            formatter_class=FORMATTER,
        )
        c.add_argument("run", help="run directory")
        data_args(c, default=None)
        split_arg(c)
        c.add_argument(
            "--out",
            required=True,
            help="output file, .npy or .csv (a .csv of image files gets a 'file' column)"
            + (", or a folder: one PNG per image, under the input's relative names"
               if name == "reconstruct" else ""),
        )  # fmt: skip
        c.add_argument(
            "--stream",
            action="store_true",
            default=None,
            help="read a .npy / .parquet file (or a folder of shards) block by block and "
            "write the .npy output as it goes (default: for folders and files over 1 GiB)",
        )
        device_arg(c)
        c.set_defaults(func=run)


def run(args) -> int:
    from ..apps import evaluate
    from ..data.stream import should_stream
    from ..io.files import write_array

    if args.data is not None and should_stream(args.data, args.stream):
        if args.limit is not None:
            raise ConfigError("--limit does not apply to streamed data; drop one of them")
        n, width = evaluate.stream_to_file(
            args.run, args.data, args.out, args.command, args.device, **reading_kwargs(args)
        )
        print(f"wrote {n} x {width} to {args.out}")
        return 0
    if args.command == "reconstruct" and _any_size_images(args):
        from ..apps.denoise import denoise_files

        opts = {k: v for k, v in reading_kwargs(args).items() if k != "resize"}
        n, where = denoise_files(args.run, args.data, args.out, limit=args.limit,
                                 device=args.device, **opts)  # fmt: skip
        print(f"wrote {n} images, each at its own size, to {where}")
        return 0
    folder = args.command == "reconstruct" and not Path(args.out).suffix
    if Path(args.out).suffix not in (".npy", ".csv") and not folder:
        what = "a .npy or .csv file" + (", or a folder" if args.command == "reconstruct" else "")
        raise ConfigError(f"cannot write {args.out}: use {what}")
    array, ds = evaluate.outputs(args.run, args.data, args.command, **job_kwargs(args))
    if folder:
        from ..io.images import write_image_folder

        write_image_folder(args.out, array, ds.image_shape or (1, 1, array.shape[1]),
                           ds.max_value, ds.files)  # fmt: skip
        print(f"wrote {len(array)} images to {args.out}")
        return 0
    write_array(args.out, array, ds.files, prefix="z" if args.command == "encode" else "x")
    print(f"wrote {array.shape[0]} x {array.shape[1]} to {args.out}")
    return 0


def _any_size_images(args) -> bool:
    """Image files for a fully convolutional model, without --resize: each at its own size
    (:func:`aekit.apps.denoise.denoise_files`, which for such a model is reconstruction)."""
    from ..data.images import is_image_source
    from ..io import checkpoint

    if args.data is None or args.resize is not None:
        return False
    path = Path(args.data)
    if not (path.exists() and is_image_source(path)):
        return False
    return bool(getattr(checkpoint.load(args.run), "fully_convolutional", False))
