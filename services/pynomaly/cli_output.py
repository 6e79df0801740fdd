"""How the `pynomaly` command line ends and writes: its exit codes, `--output` files written whole, a closed pipe
ended quietly (clig.dev: errors one line on stderr with a documented code; a broken pipe ends quietly)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

EXIT_CODES = """exit codes:
  0    success
  1    the server refused or failed the request, a job failed, or a file could not be written
  2    usage: bad flags or arguments, or an input file that cannot be read
  130  interrupted (Ctrl+C), or a batch job cancelled on the server
  141  the output pipe closed early (e.g. piped into head); nothing more is written
Every failure is one line on stderr: "error: ..." (gRPC refusals: "error: CODE: message")."""


class OutputError(Exception):
    """--output cannot be written (a missing directory, no permission): the message names the file."""


def write_output(path: str, write: Any) -> None:
    """Write through a temporary file in the same directory, renamed into place: never a half-written --output."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise OutputError(f"--output {path}: cannot write there: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it, not mkstemp's 0600
        os.replace(tmp, target)
    except OSError as e:
        os.unlink(tmp)
        raise OutputError(f"--output {path}: {e.strerror}") from None
    except BaseException:
        os.unlink(tmp)
        raise


def broken_pipe(stdout: TextIO) -> int:
    """The reader of stdout went away (`| head`): stop quietly. Python's documented recipe: point stdout at
    /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout.fileno())
    os.close(devnull)
    return 141
