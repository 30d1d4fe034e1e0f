import os
import sys

from backprop.cli import main

code = main()
if code == 130:
    # Interrupted: leave at once, without the interpreter's teardown, where JAX's
    # native threads (a compilation still running) have crashed the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
