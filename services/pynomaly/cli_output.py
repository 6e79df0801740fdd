"""How the `pynomaly` command line ends and writes: its exit codes, `--output` files written whole, a closed pipe
ended quietly (clig.dev: errors one line on stderr with a documented code; a broken pipe ends quietly), and the
one JSON style of every `--json` output: the proto's snake_case field names, integers as integers (protobuf's JSON
mapping writes int64 as strings, for JavaScript; a CLI's reader is jq or a script)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

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


_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}


def as_dict(message: Message) -> dict[str, Any]:
    """A message as `--json` writes it: proto field names, every field (defaults too), int64 as int."""
    return _ints(message.DESCRIPTOR, json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


def _ints(descriptor: Descriptor, d: dict[str, Any]) -> dict[str, Any]:
    for name, value in d.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            continue
        many = isinstance(value, list)
        if field.message_type is not None:
            if field.message_type.full_name.startswith("google.protobuf.") or field.message_type.GetOptions().map_entry:
                continue  # well-known types have their own JSON form; our maps hold Values
            d[name] = [_ints(field.message_type, v) for v in value] if many else _ints(field.message_type, value)
        elif field.type in _INT64:
            d[name] = [int(v) for v in value] if many else int(value)
    return d


def typed(value: Any, declared: str) -> Any:
    """A hyperparameter as its declared type says (a google.protobuf.Value carries every number as a double):
    200.0 is 200 when the type is "int", [64.0, 32.0] is [64, 32] for "list[int]"; 1.0 stays a float where floats
    are accepted too ("int | float"). The server's and the SDK's rule (algorithms.as_declared)."""
    from pynomaly.algorithms._spec import as_declared

    return as_declared(value, declared)
