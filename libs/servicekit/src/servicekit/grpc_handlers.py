"""Rewrapping a grpc.aio method handler: what every server interceptor here does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behavior = Any  # the servicer's coroutine (unary) or async generator (stream)


def wrap_handler(
    handler: Any,
    *,
    unary: Callable[[Behavior], Behavior],
    stream: Callable[[Behavior], Behavior],
) -> Any:
    """`handler` with its unary-unary or unary-stream behavior wrapped; others unchanged."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


class WrappedHandlers:
    """Each method's handler wrapped once instead of on every call.

    grpc.aio asks every server interceptor for the handler of every RPC; building a
    new method handler (and its wrapper closures) each time showed in orders' profile
    on every call. Methods are the registered ones only (an unknown method has no
    handler and is never wrapped), so the map stays small."""

    def __init__(self, wrap: Callable[[str, Any], Any]) -> None:
        self._wrap = wrap
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def get(self, method: str, handler: Any) -> Any:
        """`handler` of `method` (a full name, `/package.Service/Method`), wrapped."""
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped
