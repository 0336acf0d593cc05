"""`swarm completion bash|zsh|fish`: the shell script that completes `swarm`'s commands and flags.

    eval "$(swarm completion bash)"         # in ~/.bashrc
    eval "$(swarm completion zsh)"          # in ~/.zshrc, after compinit
    swarm completion fish | source          # in ~/.config/fish/config.fish

argcomplete does the work: the script asks `swarm` itself, with `_ARGCOMPLETE` set, what may
follow the words typed so far, and `main()` answers from the very parser that will parse the
command line (`argcomplete.autocomplete`). So a flag another module adds is completed with no
change here, and one library covers bash, zsh and fish, which a generated static script (shtab:
no fish) would not.
"""

from __future__ import annotations

import argparse
from typing import Any

from argcomplete.shell_integration import shellcode

SHELLS = ("bash", "zsh", "fish")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh or fish)",
        description="Print the script that completes swarm's commands and flags. bash: "
        'eval "$(swarm completion bash)" in ~/.bashrc; zsh: eval "$(swarm completion zsh)" in '
        "~/.zshrc after compinit; fish: swarm completion fish | source in config.fish.",
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(run=_print_script)


def _print_script(args: argparse.Namespace) -> int:
    print(shellcode(["swarm"], shell=args.shell), end="")
    return 0
