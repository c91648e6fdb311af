"""`mer-jax`: sweeps, models, datasets, benchmarks and the learned magnifier.

Each command lives beside the code it runs and is imported only when it is
the one asked for, so `mer-jax --help` loads neither JAX nor OpenCV.

Exit codes: 0 done; 2 a user's mistake (`EXPECTED`: a bad config value or `--set`,
a config file that does not run, a missing or unwritable path), said in one line
`mer-jax: error: ...` on stderr; 130 interrupted (Ctrl-C). Any other exception is a
bug and keeps its traceback; `mer-jax --debug COMMAND ...` shows every traceback.
"""

import argparse
import importlib
import sys
from typing import NamedTuple


class Command(NamedTuple):
    module: str  # defines add_parser(subparsers) and the command's function
    help: str


COMMANDS = {
    "sweep": Command("mer_jax.sweep", "train and evaluate every fold of a protocol in one program"),
    "predict": Command(
        "mer_jax.predict", "class probabilities for a built dataset from a sweep's exported weights"
    ),
    "experiments": Command(
        "mer_jax.experiments", "the papers' tables as configs: list them, run one, paper vs ours"
    ),
    "models": Command("mer_jax.models", "registered models and ablations with parameter counts"),
    "data": Command("mer_jax.data.build", "dataset builders: list, build, describe"),
    "bench": Command(
        "mer_jax.engine.bench",
        "images/s of fold-parallel training vs sequential folds vs one model",
    ),
    "bench-preprocess": Command(
        "mer_jax.preprocess.bench",
        "clips/s of each preprocessing step (flows, EVM, TIM, apex, face crop)",
    ),
    "train-magnifier": Command(
        "mer_jax.magnifier.train", "train the Oh et al. 2018 motion magnifier on synthetic pairs"
    ),
}


def help_of(command: str) -> str:
    """The one-line help of `command` (the commands' own parsers use it too)."""
    return COMMANDS[command].help


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (its full arguments), the rest listed."""
    parser = argparse.ArgumentParser(prog="mer-jax", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, spec in COMMANDS.items():
        if name == command:
            importlib.import_module(spec.module).add_parser(sub)
        else:
            sub.add_parser(name, help=spec.help)
    return parser


# A user's mistake, not a bug: one line and exit code 2 (errors.UserError is a ValueError).
EXPECTED = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --debug is global; taken anywhere on the line (no command defines its own).
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    args = make_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return args.fn(args)
    except EXPECTED as err:
        if debug:
            raise
        print(f"mer-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("mer-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
