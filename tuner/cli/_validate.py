"""`tuner validate FILE...`: check Experiment files without running anything."""

from __future__ import annotations

import argparse

from tuner.spec import SpecError, load_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check Experiment YAML files",
        description="Check Katib v1beta1 Experiment files. Prints 'FILE: valid' or every error; "
        "exits 0 when all files are valid, 2 otherwise.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Experiment YAML file(s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            load_file(path)
        except SpecError as e:
            status = 2
            for issue in e.issues:
                print(f"{path}: {issue}")
            continue
        except OSError as e:
            status = 2
            print(f"{path}: cannot read: {e.strerror or e}")
            continue
        print(f"{path}: valid")
    return status
