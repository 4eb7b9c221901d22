"""The ``aekit`` command: train, eval, encode, reconstruct (one module per command).

``main(argv) -> int`` never raises for a user's mistake: it prints one line
``aekit: error: ...`` to stderr and returns 2 (1 when training diverged). Flags become
configs here and nowhere else.
"""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import AekitError, DiskFullError, TrainingDivergedError
from . import encode, train
from . import eval as eval_
from ._common import Parser, set_threads


def build_parser() -> Parser:
    parser = Parser(prog="aekit", description="Train and use autoencoders.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.add_parser(sub)
    eval_.add_parser(sub)
    encode.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 diverged, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    try:
        if hasattr(args, "threads"):
            set_threads(args.threads)
        return args.func(args)
    except (TrainingDivergedError, DiskFullError) as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 1
    except AekitError as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # one not already named by aekit (FileSystemError is an AekitError)
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"aekit: error: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aekit: interrupted; resume with --resume", file=sys.stderr)
        return 130
