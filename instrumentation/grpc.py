"""gRPC servers: extraction from the invocation metadata, in a server interceptor.

The gRPC server instrumentation offers no request hook: it adds its own interceptor, first, to
every ``grpc.server(...)``, and runs the RPC inside the server span. `ImpactServerInterceptor`
is added *last*, so it runs inside that span: it attributes the call from its metadata
(headers are metadata keys, lower-case), stamps the server span, and runs the handler in the
attributed context, restored when the handler returns (or its response stream ends).

When ``OTEL_IMPACT_TASKS`` names the RPC's full method (``/package.Service/Method``, the
``handler_call_details.method`` the interceptor sees; the server span carries it as
``rpc.service`` and ``rpc.method``), the interceptor stamps the task on the server span when the
handler returns or raises, with the outcome of the status code (see
`otel_impact.instrumentation.tasks`).

Under ``opentelemetry-instrument`` it is added for you to every ``grpc.server(...)`` made
afterwards, and `ImpactAioServerInterceptor` to every ``grpc.aio.server(...)``. In code::

    server = grpc.server(pool, interceptors=[..., ImpactServerInterceptor()])
    server = grpc.aio.server(interceptors=[..., ImpactAioServerInterceptor()])
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as context_api
from opentelemetry import trace

from . import _task_stamp
from ._attribution import active_extractor, attribute_request
from ._patching import patch
from .incoming import GrpcRequest

Wrap = Callable[[Any, "str | None"], Any]


class ImpactServerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Attributes each call to its customer; place it after the OpenTelemetry interceptor."""

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        task = _task_of(handler_call_details)
        if handler is None or (task is None and not active_extractor().active):
            return handler
        return _rewrapped(handler, _unary, _streaming, task)


class ImpactAioServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """`ImpactServerInterceptor` for ``grpc.aio`` servers (handlers are coroutines and async iterators)."""

    async def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        task = _task_of(handler_call_details)
        if handler is None or (task is None and not active_extractor().active):
            return handler
        return _rewrapped(handler, _aio_unary, _aio_streaming, task)


def _task_of(handler_call_details: Any) -> str | None:
    rules = _task_stamp.rules
    if rules is None:
        return None
    method = getattr(handler_call_details, "method", None)
    return rules.match_grpc(method) if isinstance(method, str) else None


def _rewrapped(handler: Any, unary: Wrap, streaming: Wrap, task: str | None) -> Any:
    """``handler`` with its behavior wrapped by ``unary`` or ``streaming`` (by response kind)."""
    if handler.request_streaming and handler.response_streaming:
        factory, behavior, wrap = grpc.stream_stream_rpc_method_handler, handler.stream_stream, streaming
    elif handler.request_streaming:
        factory, behavior, wrap = grpc.stream_unary_rpc_method_handler, handler.stream_unary, unary
    elif handler.response_streaming:
        factory, behavior, wrap = grpc.unary_stream_rpc_method_handler, handler.unary_stream, streaming
    else:
        factory, behavior, wrap = grpc.unary_unary_rpc_method_handler, handler.unary_unary, unary
    return factory(
        wrap(behavior, task),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _attributed_context(context: Any, task: str | None) -> tuple[object, _task_stamp.TaskProbe | None]:
    """Attribute the call in a fresh context layer; returns the token that removes the layer, and
    the task probe when ``task`` is named."""
    token = context_api.attach(context_api.get_current())
    span = trace.get_current_span()
    attribute_request(span, GrpcRequest(context))
    probe = _task_stamp.open_probe(span) if task is not None and _task_stamp.rules is not None else None
    return token, probe


def _finish(probe: _task_stamp.TaskProbe | None, task: str | None, context: Any, error: BaseException | None) -> None:
    """Stamp ``task`` with the call's status: the code the handler set (or aborted with), else
    ``OK`` when it returned and ``UNKNOWN`` when it raised."""
    if probe is None or task is None:
        return
    code: Any = None
    with contextlib.suppress(Exception):  # an old grpcio without code(): decided by the exception alone
        code = context.code()
    name = getattr(code, "name", None)
    if not isinstance(name, str):
        name = "OK" if error is None else "UNKNOWN"
    _task_stamp.finish_grpc(probe, task, name)


def _unary(behavior: Callable[[Any, Any], Any], task: str | None) -> Callable[[Any, Any], Any]:
    @functools.wraps(behavior)
    def unary(request: Any, context: Any) -> Any:
        token, probe = _attributed_context(context, task)
        error: BaseException | None = None
        try:
            return behavior(request, context)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _finish(probe, task, context, error)
            context_api.detach(token)  # type: ignore[arg-type]

    return unary


def _streaming(behavior: Callable[[Any, Any], Iterator[Any]], task: str | None) -> Callable[[Any, Any], Iterator[Any]]:
    @functools.wraps(behavior)
    def streaming(request: Any, context: Any) -> Iterator[Any]:
        token, probe = _attributed_context(context, task)
        error: BaseException | None = None
        try:
            yield from behavior(request, context)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _finish(probe, task, context, error)
            context_api.detach(token)  # type: ignore[arg-type]

    return streaming


def _aio_unary(behavior: Callable[[Any, Any], Any], task: str | None) -> Callable[[Any, Any], Any]:
    @functools.wraps(behavior)
    async def unary(request: Any, context: Any) -> Any:
        token, probe = _attributed_context(context, task)
        error: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _finish(probe, task, context, error)
            context_api.detach(token)  # type: ignore[arg-type]

    return unary


def _aio_streaming(
    behavior: Callable[[Any, Any], AsyncIterator[Any]], task: str | None
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    @functools.wraps(behavior)
    async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
        token, probe = _attributed_context(context, task)
        error: BaseException | None = None
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as raised:
            error = raised
            raise
        finally:
            _finish(probe, task, context, error)
            context_api.detach(token)  # type: ignore[arg-type]

    return streaming


def _adding_last(interceptor_type: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def server(*args: Any, **kwargs: Any) -> Any:
            if len(args) > 2:  # server(thread_pool, handlers, interceptors, ...)
                positional = list(args)
                positional[2] = [*(positional[2] or ()), interceptor_type()]
                return original(*positional, **kwargs)
            kwargs["interceptors"] = [*(kwargs.get("interceptors") or ()), interceptor_type()]
            return original(*args, **kwargs)

        return server

    return make


def arm() -> bool:
    """Add `ImpactServerInterceptor` last to every ``grpc.server(...)`` made from now on."""
    return patch(grpc, "server", _adding_last(ImpactServerInterceptor))


def arm_aio() -> bool:
    """Add `ImpactAioServerInterceptor` last to every ``grpc.aio.server(...)`` made from now on."""
    return patch(grpc.aio, "server", _adding_last(ImpactAioServerInterceptor))
