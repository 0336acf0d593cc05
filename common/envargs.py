"""Every option also from the environment: `--max-retained` takes its default from
`SWARM_MAX_RETAINED`, `--log-format` from `SWARM_LOG_FORMAT`, and so on for every long option of
every command (`SWARM_` + the option's name, upper case, dashes as underscores).

The rule, as `swarm --help` states it:
  * an option given on the command line wins over its variable, and the variable wins over the
    built-in default;
  * a switch (`--wait`, `--json`) is on when its variable is 1, true, yes or on; off when 0,
    false, no, off or empty;
  * a repeatable option (`--module`) reads a comma-separated list; given on the command line at
    all, only the command line's values count;
  * one variable per option name, for every command that has that option.

Applied once the parser is complete (`apply(parser)`), it only changes defaults: what argparse
does with the command line is untouched. A typed value is converted when it is used, as argparse
converts string defaults, so a bad variable fails only the command that reads it, and its error
names the variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

PREFIX = "SWARM_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

EPILOG = (
    "Every option can also come from the environment: --max-retained from SWARM_MAX_RETAINED, "
    "--log-format from SWARM_LOG_FORMAT (SWARM_ and the option's name, upper case, dashes as "
    "underscores). The command line wins over the variable, the variable over the default. "
    "Switches take 1/true/yes/on or 0/false/no/off; repeatable options a comma-separated list."
)


def variable(option: str) -> str:
    """`--max-retained` -> `SWARM_MAX_RETAINED`."""
    return PREFIX + option.lstrip("-").upper().replace("-", "_")


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every sub-command's parser below it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()  # aliases map to the same parser
            for sub in action.choices.values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from parsers(sub)


def apply(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """Set the defaults of `parser` and its sub-commands from the SWARM_* variables."""
    env = os.environ if environ is None else environ
    for p in parsers(parser):
        for action in p._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if not longs or isinstance(action, _SKIP):
                continue
            name = variable(longs[0])
            raw = env.get(name)
            if raw is not None:
                _set(p, action, name, raw)


_SKIP = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _set(p: argparse.ArgumentParser, action: argparse.Action, name: str, raw: str) -> None:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        # argparse never applies a switch's type to the command line (it stores const), only
        # to a str default: so the word is read, and refused, only by the command that has it.
        action.default = raw
        action.type = _switch(name, isinstance(action, argparse._StoreTrueAction))
    elif isinstance(action, argparse._AppendAction):
        convert = _typed(action, name, raw)
        action.default = _EnvList(convert(v.strip()) for v in raw.split(",") if v.strip())
    elif action.nargs in (None, "?"):
        # A str default: argparse converts it with action.type only when the option is not on
        # the command line. Identity tells our wrapper that the value is the variable's.
        action.default = raw
        action.type = _typed(action, name, raw)


def _switch(name: str, store_true: bool) -> Callable[[str], bool]:
    def switch(value: str) -> bool:
        word = value.strip().lower()
        if word not in _TRUE | _FALSE:
            raise argparse.ArgumentTypeError(
                f"${name}={value!r}: not one of 1/true/yes/on or 0/false/no/off"
            )
        return (word in _TRUE) is store_true

    return switch


def _typed(action: argparse.Action, name: str, raw: str) -> Callable[[str], Any]:
    convert: Callable[[str], Any] = action.type or str  # type: ignore[assignment]
    choices = action.choices

    def from_env_or_command_line(value: str) -> Any:
        if value is not raw:
            return convert(value)
        try:
            out = convert(value)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise argparse.ArgumentTypeError(f"${name}={raw!r}: {exc}") from None
        if choices is not None and out not in choices:
            raise argparse.ArgumentTypeError(
                f"${name}={raw!r}: choose from {', '.join(map(str, choices))}"
            )
        return out

    from_env_or_command_line.__name__ = getattr(convert, "__name__", "value")
    return from_env_or_command_line


class _EnvList(list[Any]):
    """A repeatable option's default from its variable. argparse appends each command-line
    value to a copy (copy.copy) of what it holds: the copy of the default is armed, and its
    first append empties it, so that the command line's values replace the variable's."""

    def __init__(self, items: Iterable[Any] = (), state: str = "default") -> None:
        super().__init__(items)
        self.state = state  # "default", then "armed" (a copy to append to), then "replaced"

    def __copy__(self) -> _EnvList:
        return _EnvList(self, "armed" if self.state == "default" else self.state)

    def append(self, value: Any) -> None:
        if self.state == "armed":
            self.clear()
            self.state = "replaced"
        super().append(value)
