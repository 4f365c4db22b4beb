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
