"""``python -m aekit`` and the ``aekit`` command: :func:`aekit.cli.main` with the Ctrl-C that
lands outside it (while torch is imported, or as the interpreter exits) said in one line or
ignored, never a traceback."""

import signal
import sys

BEFORE = "aekit: interrupted before it began: nothing was written; run the same command again"


def run() -> None:
    try:
        from .cli import main
    except KeyboardInterrupt:  # Ctrl-C while the interpreter imports (torch takes a second)
        print(BEFORE, file=sys.stderr)
        sys.exit(130)
    try:
        code = main()
    except KeyboardInterrupt:  # after the command returned (it had finished)
        print("aekit: interrupted", file=sys.stderr)
        code = 130
    # the command is done: a Ctrl-C now would only interrupt the interpreter's exit, whose
    # atexit handlers (torch's among them) print a traceback for it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    run()
