"""The ``aekit`` command: train, eval, encode, reconstruct, denoise, fit-detector, score, detect,
sample, interpolate, fit-density.

``main(argv) -> int`` never raises for a user's mistake: it prints one line
``aekit: error: ...`` to stderr and returns 2 (1 when training diverged). Flags become
configs here and nowhere else.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings

from .. import __version__
from ..errors import AekitError, DiskFullError, TrainingDivergedError
from . import compress as compress_
from . import denoise, encode, export, probe, report, sample, score, train
from . import eval as eval_
from ._common import Parser, set_threads


def build_parser() -> Parser:
    parser = Parser(prog="aekit", description="Train and use autoencoders.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.add_parser(sub)
    eval_.add_parser(sub)
    encode.add_parsers(sub)
    report.add_parser(sub)
    score.add_parsers(sub)
    export.add_parser(sub)
    probe.add_parser(sub)
    sample.add_parsers(sub)
    compress_.add_parsers(sub)
    denoise.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that the command stops as on Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 diverged or disk full, 2 bad input,
    130 interrupted by Ctrl-C, 143 by SIGTERM)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("aekit: interrupted before it began: nothing was written; run the same command "
              "again", file=sys.stderr)  # fmt: skip
        return 130
    previous = None
    try:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            return _run(args)
    except KeyboardInterrupt as e:  # as the command starts or ends, outside _run's own
        return _interrupted(args, e)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr (``aekit: warning: ...``), without a source line."""
    print(f"aekit: warning: {message}", file=sys.stderr if file is None else file)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _run(args) -> int:
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
    except BrokenPipeError:  # stdout piped into a command that stopped reading (| head)
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer
    except OSError as e:  # one not already named by aekit (FileSystemError is an AekitError)
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"aekit: error: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _interrupted(args, e)


def _interrupted(args, e: KeyboardInterrupt) -> int:
    """The one line of a command stopped by Ctrl-C (exit 130) or SIGTERM (143)."""
    what = "terminated" if isinstance(e, Terminated) else "interrupted"
    hint = _train_hint(getattr(args, "out", None)) if args.command == "train" else ""
    print(f"aekit: {what}{hint}", file=sys.stderr)
    return 143 if isinstance(e, Terminated) else 130


def _train_hint(out) -> str:
    """What an interrupted ``aekit train`` says to do next: resume a run that has its
    config.json, else run the command again (nothing of the run was kept yet)."""
    from ..io.rundir import Run

    if out is not None and Run(out).config_file.is_file():
        return f"; the run keeps its last finished epoch: aekit train --resume --out {out}"
    return "; nothing of the run was kept yet: run the same command again"
