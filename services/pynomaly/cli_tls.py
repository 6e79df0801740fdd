"""The client commands' connection options: the server address (`--server`, default $PYNOMALY_SERVER), TLS
(`--tls-ca`, and `--tls-cert`/`--tls-key` for mutual TLS; each defaulting to a PYNOMALY_TLS_* variable) and the
bearer token, read from PYNOMALY_TOKEN only (a flag would show it in `ps` and the shell history).

The options go on every client command and again on each action of a command that has actions (`models list`,
`batch get`), so they work before or after the action: the action's copy defaults to argparse.SUPPRESS, which
keeps a value given before it."""

from __future__ import annotations

import argparse
import os

from pynomaly.client import DEFAULT_TARGET, Client
from pynomaly.errors import InvalidArgument


def add_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The options on `parser`; with `suppress`, defaults that leave a value set before untouched."""
    def default(value: str | None) -> str | None:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--server", default=default(os.environ.get("PYNOMALY_SERVER") or DEFAULT_TARGET),
                        help=f"server address (default $PYNOMALY_SERVER, else {DEFAULT_TARGET})")
    tls = parser.add_argument_group("TLS (the bearer token, if the server wants one, is read from $PYNOMALY_TOKEN)")
    tls.add_argument("--tls-ca", default=default(os.environ.get("PYNOMALY_TLS_CA") or None), metavar="FILE",
                     help="connect with TLS, checking the server's certificate against this CA (PEM) "
                          "(default $PYNOMALY_TLS_CA; none: plaintext unless --tls-cert)")
    tls.add_argument("--tls-cert", default=default(os.environ.get("PYNOMALY_TLS_CERT") or None), metavar="FILE",
                     help="this client's certificate (PEM), for mutual TLS (default $PYNOMALY_TLS_CERT)")
    tls.add_argument("--tls-key", default=default(os.environ.get("PYNOMALY_TLS_KEY") or None), metavar="FILE",
                     help="the key of --tls-cert (PEM) (default $PYNOMALY_TLS_KEY)")


def action_options() -> argparse.ArgumentParser:
    """A parent parser for the actions of a command (parents=[...]): the same options, given after the action."""
    parent = argparse.ArgumentParser(add_help=False)
    add_options(parent, suppress=True)
    return parent


def connect(args: argparse.Namespace) -> Client:
    """The SDK client the options name; InvalidArgument for options that do not go together."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together: give both, or neither")
    return Client(args.server, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)
