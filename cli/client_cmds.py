"""`swarm submit`, `swarm status`, `swarm cancel`: the SDK from a shell.

Exit codes (also in each command's --help):
  0  done; every task succeeded
  1  a task failed, was cancelled, or is unknown
  2  bad usage or input: a payload that is not JSON, a missing file, a request the
     orchestrator refused
  3  the orchestrator cannot be reached, or is at a limit (retry later)
  4  timed out waiting for results (the tasks go on)
  5  `swarm cancel`: some ids were unknown (the others were cancelled)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any

from swarm.client import (
    AsyncClient,
    Backpressure,
    ClusterStatus,
    DeadlineExceeded,
    NotFound,
    Rejected,
    SwarmError,
    TaskError,
    TaskFuture,
    Unavailable,
)
from swarm.client._client import UNKNOWN, reconnect_timeout
from swarm.common.credentials import add_client_args, client_credentials
from swarm.common.runtime import default_address, run

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
EXIT_PARTIAL = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 done, 1 a task failed/cancelled/unknown, 2 bad usage or input, "
    "3 orchestrator unreachable or busy, 4 timed out waiting, 130 interrupted"
)
CANCEL_EXIT_CODES_HELP = (
    "exit codes: 0 every task known (each one's state printed), 1 no id known, 5 some ids "
    "unknown (the others were cancelled; each unknown one is reported), 2 bad usage, "
    "3 orchestrator unreachable or busy, 130 interrupted"
)

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class UsageError(Exception):
    """Bad input found before anything was sent; the message says what and where."""


def register(subparsers: Any) -> None:
    """Add the client commands to `swarm`'s sub-parsers."""
    p = subparsers.add_parser(
        "submit",
        help="submit a task (or one per line of a file) and optionally wait for results",
        description=(
            "Submit a task of KIND with PAYLOAD (text, sent as UTF-8 bytes; with --json, a JSON "
            "value). Prints the task id, or with --wait its output. With --from FILE, submits "
            "one task per line, shows progress and a summary, and waits for all of them."
        ),
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("kind", help="the handler to run, e.g. echo, sleep")
    p.add_argument("payload", nargs="?", help="the payload (default: empty)")
    p.add_argument("--json", action="store_true", help="payloads are JSON; print outputs as JSON")
    p.add_argument("--wait", action="store_true", help="wait and print the output(s)")
    p.add_argument(
        "--from", dest="from_file", metavar="FILE", help="one payload per line ('-': stdin)"
    )
    p.add_argument(
        "--timeout", type=float, metavar="S", help="give up waiting after S seconds (exit 4)"
    )
    _add_connect(p)
    p.set_defaults(run=_entry(_submit))

    p = subparsers.add_parser(
        "status",
        help="show the orchestrator's hosts, load and queues",
        description="A table of hosts (id, pid, agents, running, free, loop lag, tasks done), "
        "then task counts and queue depths.",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("--json", action="store_true", help="print the status as one JSON object")
    _add_connect(p)
    p.set_defaults(run=_entry(_status))

    p = subparsers.add_parser(
        "cancel",
        help="cancel tasks by id",
        description="Cancel tasks: a queued one is dropped, a running one is cancelled on its "
        "host. Prints each known task's state afterwards; an unknown id (never submitted, or "
        "forgotten after the retention time) is reported on stderr and does not stop the "
        "others from being cancelled.",
        epilog=CANCEL_EXIT_CODES_HELP,
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="task ids")
    _add_connect(p)
    p.set_defaults(run=_entry(_cancel))


def _add_connect(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connect",
        metavar="ADDR",
        default=None,
        help=f"orchestrator address (default: $SWARM_ADDRESS, else {default_address()})",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the orchestrator to answer (default: 3)",
    )
    p.add_argument(
        "--reconnect-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="once connected, how long to retry a lost orchestrator (a restart, say) before "
        "giving up (default: the larger of 10 s and --connect-timeout; $SWARM_RECONNECT_TIMEOUT)",
    )
    p.add_argument(
        "--namespace", default=None, help="task namespace (default: the token's, else default)"
    )
    add_client_args(p)


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse names the option when this refuses)."""
    try:
        return reconnect_timeout(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("reconnect_timeout_s ", "")) from None


def _client(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(
        args.connect,
        namespace=args.namespace,
        connect_timeout_s=args.connect_timeout,
        reconnect_timeout_s=args.reconnect_timeout or max(10.0, args.connect_timeout),
        credentials=client_credentials(args),
    )


def _entry(command: Command) -> Callable[[argparse.Namespace], int]:
    """Run a command on the event loop and turn every failure into a message and an exit code."""

    def main(args: argparse.Namespace) -> int:
        try:
            return run(command(args))
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED
        except UsageError as exc:
            _error(str(exc))
            return EXIT_USAGE
        except NotFound as exc:
            _error(f"{exc} (finished tasks are forgotten after the orchestrator's retention time)")
            return EXIT_TASK_FAILED
        except Rejected as exc:
            _error(f"the orchestrator refused the request: {exc}")
            return EXIT_USAGE
        except Unavailable as exc:
            _error(str(exc))
            return EXIT_UNAVAILABLE
        except Backpressure as exc:
            _error(f"the orchestrator is at a limit, retry later: {exc}")
            return EXIT_UNAVAILABLE
        except DeadlineExceeded as exc:
            _error(f"{exc}; the task(s) go on: see `swarm status`, or `swarm cancel ID`")
            return EXIT_TIMEOUT
        except TaskError as exc:
            _error(str(exc))
            if exc.remote_traceback:
                print(exc.remote_traceback.rstrip(), file=sys.stderr)
            return EXIT_TASK_FAILED
        except SwarmError as exc:
            _error(str(exc))
            return EXIT_TASK_FAILED

    return main


def _error(message: str) -> None:
    print(f"swarm: error: {message}", file=sys.stderr)


# -- submit ---------------------------------------------------------------------------------


def _parse_payload(text: str | None, as_json: bool, where: str) -> object:
    if text is None:
        return None if as_json else b""
    if not as_json:
        return text.encode()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where} is not valid JSON ({exc.msg} at column {exc.colno}); "
            "quote strings, e.g. '\"text\"', or drop --json to send raw text"
        ) from None


def _read_payloads(path: str, as_json: bool) -> list[object]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = "stdin" if path == "-" else path
    return [
        _parse_payload(line, as_json, f"{name}:{n}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def _print_output(value: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, ensure_ascii=False))
        return
    data = value if isinstance(value, bytes) else str(value).encode()
    out = sys.stdout.buffer
    out.write(data if data.endswith(b"\n") else data + b"\n")
    out.flush()


async def _submit(args: argparse.Namespace) -> int:
    if args.from_file is not None:
        if args.payload is not None:
            raise UsageError("give either PAYLOAD or --from FILE, not both")
        payloads = _read_payloads(args.from_file, args.json)
        async with _client(args) as client:
            return await _submit_many(client, args, payloads)
    payload = _parse_payload(args.payload, args.json, "PAYLOAD")
    async with _client(args) as client:
        fut = await client.submit(args.kind, payload)
        if not args.wait:
            print(fut.id)
            return EXIT_OK
        _print_output(await fut.result(timeout=args.timeout), args.json)
    return EXIT_OK


async def _submit_many(
    client: AsyncClient, args: argparse.Namespace, payloads: list[object]
) -> int:
    started = time.perf_counter()
    futs = await client.map(args.kind, payloads)
    failed: list[TaskFuture] = []
    # A bar (tqdm) where a person watches; piped, stderr gets only the summary below.
    bar = args.kind if sys.stderr.isatty() else False
    async for fut in client.as_completed(futs, timeout=args.timeout, progress=bar):
        try:
            await fut
        except TaskError:
            failed.append(fut)
    if args.wait:
        for fut in futs:
            try:
                _print_output(await fut, args.json)
            except TaskError:
                print("", flush=True)  # keep one line per payload
    elapsed = time.perf_counter() - started
    rate = len(futs) / elapsed if elapsed > 0 else 0.0
    print(
        f"{len(futs)} tasks: {len(futs) - len(failed)} succeeded, {len(failed)} failed "
        f"in {elapsed:.2f} s ({rate:,.0f} tasks/s)",
        file=sys.stderr,
    )
    for fut in failed[:5]:
        try:
            await fut
        except TaskError as exc:
            print(f"  {exc}", file=sys.stderr)
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5} more", file=sys.stderr)
    return EXIT_TASK_FAILED if failed else EXIT_OK


# -- status and cancel ----------------------------------------------------------------------


async def _status(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        status = await client.status()
    if args.json:
        print(json.dumps(asdict(status), indent=2))
    else:
        print(format_status(status, client.address))
    return EXIT_OK


def format_status(status: ClusterStatus, address: str) -> str:
    """The human table of `swarm status`."""
    head = ("HOST", "PID", "STATE", "AGENTS", "RUNNING", "FREE", "LOOP LAG", "DONE")
    rows = [
        (
            h.host_id,
            str(h.pid),
            h.state,
            str(h.agents),
            str(h.running),
            str(h.free),
            f"{h.loop_lag_ms:.1f} ms",
            str(h.tasks_done),
        )
        for h in status.hosts
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"orchestrator {address}, up {status.uptime_s:.0f} s, {len(status.hosts)} host(s)"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in [head, *rows]]  # fmt: skip
    if not rows:
        lines.append("(no hosts: start one with `swarm host --connect ADDR`)")
    counts = ", ".join(f"{n} {s.lower()}" for s, n in status.tasks.items() if n)
    lines.append(f"tasks: {counts or 'none'}")
    if status.clients:
        connected = sum(c.connected for c in status.clients)
        unacked = sum(c.unacked_results for c in status.clients)
        lines.append(
            f"clients: {connected} connected of {len(status.clients)}, "
            f"{unacked} results not yet acknowledged"
        )
    if status.hosts_lost:
        lines.append(f"hosts lost since start: {status.hosts_lost}")
    for kind, queued in status.queues.items():
        lost = "  (no live host serves this kind)" if kind in status.kinds_without_host else ""
        lines.append(f"queue {kind}: {queued} queued{lost}")
    return "\n".join(lines)


async def _cancel(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        states = await client.cancel(*args.ids)
    unknown = [task_id for task_id, state in states.items() if state == UNKNOWN]
    for task_id, state in states.items():
        if state != UNKNOWN:
            print(f"{task_id}\t{state}")
    for task_id in unknown:
        _error(
            f"unknown task {task_id!r} (finished tasks are forgotten after the orchestrator's "
            "retention time)"
        )
    if not unknown:
        return EXIT_OK
    return EXIT_TASK_FAILED if len(unknown) == len(states) else EXIT_PARTIAL
