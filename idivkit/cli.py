"""The ``idivkit`` command line (also ``python -m idivkit``).

Each subcommand lives in its own module, imported only when that subcommand runs, so that
``idivkit --help`` stays instant and never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# name -> (module, one-line help). Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "reproduce": ("idivkit.reproduce", "train the thesis's grid and regenerate its SSIM tables and figures"),
    "sweep": ("idivkit.reproduce.sweep", "SSIM across the beta-divergence family (beta from 0 to 2)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idivkit",
        description="Autoencoders trained with asymmetric losses: reproduce and extend the thesis.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        import_module(module_name).add_arguments(sub_parser)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
