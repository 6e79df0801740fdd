"""Domain errors. Each maps to one gRPC status in `pynomaly.server.status` (the only place that knows gRPC)."""

from __future__ import annotations


class PynomalyError(Exception):
    """Base class: a failure the client caused or can act on. Its message is shown to the client."""


class InvalidArgument(PynomalyError):
    """Malformed input: wrong width, NaN/inf, empty, bad hyperparameter, unknown algorithm."""


class NotFound(PynomalyError):
    """Unknown model, version, alias or job."""


class AlreadyExists(PynomalyError):
    """What the call would create exists already (e.g. a batch job's output file, without `overwrite`)."""


class FailedPrecondition(PynomalyError):
    """The request is well-formed but the system is not in a state to serve it."""


class ResourceExhausted(PynomalyError):
    """A payload or quota over its configured limit."""


class Unauthenticated(PynomalyError):
    """No valid credentials: no bearer token, or one the server does not know (pynomaly.auth)."""


class PermissionDenied(PynomalyError):
    """The caller may not do this (e.g. read a file outside the data root; a token without the scope needed)."""


class DeadlineExceeded(PynomalyError):
    """The work could not finish within the caller's deadline."""


class Unavailable(PynomalyError):
    """A part of the platform the call needs is down or restarting (e.g. a Ray Serve replica): retry later."""


class PayloadTooLarge(ResourceExhausted):
    """A request body over the configured size limit (HTTP tells it apart from other limits: 413, not 429)."""
