import sys

BEFORE = "aekit: interrupted before it began: nothing was written; run the same command again"

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the interpreter imports (torch takes a second or two)
    print(BEFORE, file=sys.stderr)
    sys.exit(130)
try:
    code = main()
except KeyboardInterrupt:  # after the command returned (it had finished)
    print("aekit: interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
