"""How every command-line entry point reports problems and progress (pipelines and model alike).

A `UserError` is a problem the user can fix (a bad path, a bad option, a directory that is not
what it should be): the CLI prints one line and exits 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys


class UserError(Exception):
    """A problem the user can fix (bad path, bad option): one line, no traceback."""


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Beam and TF are chatty at INFO; our own progress lines are what users want.
    for noisy in ("apache_beam", "absl", "tensorflow", "h5py", "matplotlib", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


def main_with_user_errors(run, argv=None) -> int:
    """Run a CLI entry point; a UserError prints one line and exits 2 (no traceback)."""
    try:
        run(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
