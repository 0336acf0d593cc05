"""Logging set-up shared by every Swarm process: `--log-format text` (the default) or `json`.

    logs.add_args(parser, level="INFO")      # --log-level and --log-format
    logs.setup(args.log_level, args.log_format)

`text` is the line every process always wrote (`asctime name levelname message`); tools read
it (deploy/events.py parses the orchestrator's host-loss lines), so it does not change. `json`
writes one object per line: `time` (ISO 8601, UTC, milliseconds), `level`, `logger`,
`message`, then the structured fields the call passed with `extra=` (`event`, `host_id`,
`task_id`, `reason`, timings, ...), and `exc` with the traceback when there is one. The fields
are what a log pipeline indexes; the message stays readable for a person.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# Every attribute a bare LogRecord has: whatever else a record carries came in with `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields from `extra=` after the four fixed keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # default=str: a field that is not JSON (a Path, an enum) is written as its str, never
        # an exception in the middle of logging.
        return json.dumps(out, default=str, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes, as logging's last resort does:
    the CLI runs in-process too (tests, embedding), where stderr is swapped and closed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup(level: str | int = "WARNING", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger: one stderr handler in `fmt`. Replaces earlier handlers, so
    a command that sets up again (the CLI, then `swarm up`) does not log every line twice."""
    handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def setup_unless_embedded(level: str | int = "WARNING", fmt: str = "text") -> None:
    """`setup`, unless something else configured logging first: the CLI called in-process (a
    test under pytest, an application embedding it) must not replace its host's handlers, and
    a handler of ours left behind would outlive the call."""
    if all(isinstance(h, _Stderr) for h in logging.getLogger().handlers):
        setup(level, fmt)


def add_args(parser: argparse.ArgumentParser, *, level: str | None = None) -> None:
    """--log-format, and --log-level too when `level` (its default) is given."""
    if level is not None:
        parser.add_argument("--log-level", default=level, help=f"(default {level})")
    add_format_arg(parser)


def add_format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        default="text",
        choices=FORMATS,
        help="text lines, or one JSON object per line with structured fields (default text)",
    )


def has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in a.option_strings for a in parser._actions)
