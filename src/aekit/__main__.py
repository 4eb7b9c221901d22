import sys

try:
    from .cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the interpreter imports (torch takes a second or two)
    print("aekit: interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
