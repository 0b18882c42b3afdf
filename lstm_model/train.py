"""Train a model on an ingested dataset: the dataset's task picks the trainer.

    python -m lstm_model.train --dataset_dir data/processed/imdb_mini --model_dir models/imdb_mini
    python -m lstm_model.train --dataset_dir data/processed/shakespeare --model_dir models/shakespeare --max_minutes 30

The dataset's manifest.json names its task ("classification", "language_model", "translation");
the flags are that task's (`--task NAME --help` lists them without a dataset):

* classification: `lstm_model.tasks.classification` (the (Bi)LSTM classifier);
* language_model: `lstm_model.tasks.language_model` (the causal stacked LSTM LM);
* translation: `lstm_model.tasks.translation` (BiLSTM encoder + attention LSTM decoder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from schemas import names


def task_of(argv: list[str] | None) -> str:
    """The task named by --task, else the one in --dataset_dir's manifest, else classification."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=None)
    pre.add_argument("--dataset_dir", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.task:
        return known.task
    manifest = Path(known.dataset_dir or "", names.MANIFEST_FILE)
    if known.dataset_dir and manifest.is_file():
        try:
            return json.loads(manifest.read_text()).get("task", names.TASK_CLASSIFICATION)
        except ValueError:
            pass  # the trainer reports the unreadable manifest in its own words
    return names.TASK_CLASSIFICATION


def run(argv: list[str] | None = None) -> dict:
    from lstm_model import tasks

    return tasks.get(task_of(argv if argv is not None else sys.argv[1:])).run(argv)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
