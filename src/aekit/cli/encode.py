"""``aekit encode`` and ``aekit reconstruct``: a saved run's codes or reconstructions, to a file."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ._common import FORMATTER, data_args, device_arg, job_kwargs, split_arg

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
        c.add_argument("--out", required=True, help="output file, .npy or .csv")
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
        n, width = evaluate.stream_to_file(args.run, args.data, args.out, args.command, args.device)
        print(f"wrote {n} x {width} to {args.out}")
        return 0
    job = evaluate.encode if args.command == "encode" else evaluate.reconstruct
    if Path(args.out).suffix not in (".npy", ".csv"):
        raise ConfigError(f"cannot write {args.out}: use a .npy or .csv output file")
    array = job(args.run, args.data, **job_kwargs(args))
    write_array(args.out, array)
    print(f"wrote {array.shape[0]} x {array.shape[1]} to {args.out}")
    return 0
