"""`swarm get`, `swarm wait`, `swarm drain` and `swarm top`: tasks by id, hosts, a live view.

    swarm get ID...            state, attempts, host and (when final) output or error, per task
    swarm wait ID... [--any] [--timeout S]   until they finish; exit 0 only if all succeeded
    swarm drain HOST [--grace S]             the host finishes what runs, then leaves (admin)
    swarm top [--interval S]   the `swarm status` table, redrawn, with throughput

Exit codes as `swarm submit` (cli/client_cmds.py): 0 done and succeeded, 1 a task failed,
was cancelled or is unknown, 2 bad usage, 3 unreachable, 4 timed out waiting, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, replace
from typing import Any

from swarm.cli.client_cmds import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_TASK_FAILED,
    EXIT_TIMEOUT,
    _add_connect,
    _client,
    _entry,
    format_status,
)
from swarm.client import TaskInfo


def register(sub: Any) -> None:
    p = sub.add_parser("get", help="show tasks by id", epilog=EXIT_CODES_HELP)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    _add_connect(p)
    p.set_defaults(run=_entry(_get))

    p = sub.add_parser("wait", help="wait for tasks by id to finish", epilog=EXIT_CODES_HELP)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--any", action="store_true", help="return once one of them finished")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="exit 4 past it")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    _add_connect(p)
    p.set_defaults(run=_entry(_wait))

    p = sub.add_parser(
        "drain",
        help="drain a host: no new work, finish what runs, leave (admin token)",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("host", metavar="HOST", help="host id, as `swarm status` lists it")
    p.add_argument("--grace", type=float, default=0.0, metavar="S", help="0: the server's 30 s")
    _add_connect(p)
    p.set_defaults(run=_entry(_drain))

    p = sub.add_parser("top", help="the status table, refreshed", epilog=EXIT_CODES_HELP)
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="default 1")
    p.add_argument("--count", type=int, default=0, help="stop after N frames (0: Ctrl-C)")
    _add_connect(p)
    p.set_defaults(run=_entry(_top))


def _show(tasks: list[TaskInfo], as_json: bool) -> None:
    for t in tasks:
        if as_json:
            d = asdict(t)
            d["output"] = t.output.decode(errors="replace")
            print(json.dumps(d))
            continue
        where = f" on {t.host_id}" if t.host_id else ""
        print(f"{t.id}  {t.state}  {t.kind or '-'}  attempts {t.attempts}{where}")
        if t.state == "SUCCEEDED":
            print(f"  output: {t.output.decode(errors='replace')}")
        elif t.error_type or t.error_message:
            print(f"  error: {t.error_reason} {t.error_type}: {t.error_message}")
            if t.traceback:
                print("  " + t.traceback.rstrip().replace("\n", "\n  "))


def _code(tasks: list[TaskInfo]) -> int:
    return EXIT_OK if all(t.state == "SUCCEEDED" for t in tasks) else EXIT_TASK_FAILED


async def _get(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        tasks = await client.get(*args.ids)
    _show(tasks, args.json)
    return _code(tasks)


async def _wait(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        # Unknown ids: NotFound (exit 1) before any waiting. Wait answers with results only, so
        # the kinds shown come from here.
        kinds = {t.id: t.kind for t in await client.get(*args.ids)}
        done = await client.wait(*args.ids, timeout=args.timeout, any=args.any)
    done = [replace(t, kind=t.kind or kinds.get(t.id, "")) for t in done]
    _show(done, args.json)
    if not done or (not args.any and len(done) < len(set(args.ids))):
        print("swarm: error: timed out waiting; the tasks go on", file=sys.stderr)
        return EXIT_TIMEOUT
    return _code(done)


async def _drain(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        state = await client.drain_host(args.host, args.grace)
    print(f"{args.host}  {state}")
    return EXIT_OK


async def _top(args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty()
    async with _client(args) as client:
        last: tuple[float, int] | None = None
        frame = 0
        while True:
            status = await client.status()
            now, done = time.monotonic(), status.tasks["SUCCEEDED"] + status.tasks["FAILED"]
            rate = (done - last[1]) / (now - last[0]) if last and now > last[0] else 0.0
            last = (now, done)
            text = format_status(status, client.address)
            # Redrawn in place on a terminal; frames one after another into a pipe or file.
            prefix = "\x1b[H\x1b[2J" if tty else ""
            print(f"{prefix}{text}\nthroughput {rate:.1f} tasks/s", flush=True)
            frame += 1
            if args.count and frame >= args.count:
                return EXIT_OK
            await asyncio.sleep(args.interval)
