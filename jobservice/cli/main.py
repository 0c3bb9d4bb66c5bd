"""The console script's entry point.

The Temporal SDK's native threads can abort the interpreter at exit (``PyGILState_Release``),
which would turn any exit code into a crash. So the command flushes its output and leaves with
``os._exit``, keeping the exit code it meant.
"""

from __future__ import annotations

import os
import sys
import traceback

from jobservice.cli.app import app


def main() -> None:
    code = 0
    try:
        app()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
