"""Describing what user code raised, whatever it raised: the executor's error path.

A handler's exception is user code too: its `__str__`, the `__repr__` of its arguments and its
traceback may raise (anything, SystemExit included) or hold text protobuf cannot encode (a lone
surrogate). None of that may escape into the host: each part is taken on its own, a part that
cannot be had becomes a placeholder, and what comes back is always three encodable strings.
Only the error path pays for this; a handler that succeeds never comes here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(type name, message, traceback) of `exc`, each best effort."""
    type_ = _text(lambda: type(exc).__name__, "<unnamed exception type>")
    message = _text(lambda: str(exc), f"<str() of the {type_} raised>")
    tb = _text(lambda: "".join(traceback.format_exception(exc)), f"<the {type_}'s traceback>")
    return type_, message, tb


def _text(get: Callable[[], Any], placeholder: str) -> str:
    try:
        text = get()
        if not isinstance(text, str):
            return placeholder
        # A str subclass may override encode itself: go through plain str.
        return str.encode(text, "utf-8", "backslashreplace").decode("utf-8")
    except BaseException:  # user code: whatever it raises must not escape
        return placeholder


def call_def_handler(fn: Callable[..., Any], ctx: Any, payload: bytes) -> Any:
    """Runs a plain `def` handler in its pool thread. asyncio refuses a StopIteration as a
    future's exception (TypeError, raised in a loop callback, so the task would never end): the
    classic `next()` on an empty iterator is handed over as the RuntimeError a coroutine would
    have turned it into (PEP 479). Everything else passes through as raised."""
    try:
        return fn(ctx, payload)
    except StopIteration as stop:
        raise RuntimeError("handler raised StopIteration") from stop
