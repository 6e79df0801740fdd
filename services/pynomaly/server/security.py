"""The security settings of the gRPC front (both engines run it: server/app.py's serve_dataplane): TLS or mutual TLS
on --listen (server/tls.py), bearer tokens checked by an interceptor before any request is decoded (pynomaly.auth),
and the plaintext health-only port (--health-listen) that Kubernetes' native gRPC probes need, since they cannot
speak TLS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from pynomaly.auth import Tokens
from pynomaly.errors import PynomalyError
from pynomaly.server.status import Status, to_status
from pynomaly.server.tls import CertFiles


@dataclass
class Security:
    certs: CertFiles | None = None
    tokens: Tokens | None = None

    @classmethod
    def load(cls, tls_cert: str | None, tls_key: str | None, tls_client_ca: str | None, auth_tokens: str | None,
             auth_reflection: str = "open") -> Security:
        """Read and check the files; ValueError with one line naming the flag and the problem."""
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
        if tls_client_ca and not tls_cert:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
        if auth_reflection not in ("open", "token"):
            raise ValueError(f"--auth-reflection must be open or token, got {auth_reflection!r}")
        try:
            certs = CertFiles(tls_cert, tls_key, tls_client_ca) if tls_cert and tls_key else None
        except OSError as e:
            raise ValueError(f"cannot read the TLS files: {e}") from None
        tokens = Tokens(auth_tokens, reflection_open=auth_reflection == "open") if auth_tokens else None
        return cls(certs, tokens)

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [TokenInterceptor(self.tokens)] if self.tokens is not None else []

    def add_port(self, server: grpc.aio.Server, listen: str) -> int:
        if self.certs is None:
            return server.add_insecure_port(listen)
        return server.add_secure_port(listen, self.certs.grpc_credentials())


async def health_server(listen: str, servicer: health.aio.HealthServicer) -> tuple[grpc.aio.Server, int]:
    """A plaintext server on `listen` answering grpc.health.v1 only (the main server's statuses), started; and its
    bound port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as e:
        raise OSError(f"cannot listen on {listen} (--health-listen): {e}") from None
    await server.start()
    return server, port


def _refusal(handler: grpc.RpcMethodHandler, status: Status) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that refuses the call without decoding its request."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(*status)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED without a valid bearer token in the `authorization` metadata, PERMISSION_DENIED naming the
    scope a valid token lacks (pynomaly.auth.METHOD_SCOPES); health, and reflection unless --auth-reflection=token,
    stay open."""

    def __init__(self, tokens: Tokens):
        self._tokens = tokens

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        authorization = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else None
        try:
            self._tokens.authorize(method, authorization)
        except PynomalyError as e:
            handler = await continuation(handler_call_details)
            if handler is None:  # an unknown method: UNIMPLEMENTED, as without auth
                return handler
            return _refusal(handler, to_status(e, method))
        return await continuation(handler_call_details)
