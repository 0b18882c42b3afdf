"""Rewrite the evaluation report, baseline and blessing of an existing trained model directory.

    python -m lstm_model.report --model_dir models/imdb_mini [--dataset_dir data/processed/imdb_mini]

Training writes the report already (MODEL_DIR/report/index.html); this reruns it, e.g. with
other blessing margins or against a newer previous model. The model's task (model_info.json)
picks the task module's `report_existing`; a task without one writes its report only while
training. Each task's page is drawn by its own module (`classification_report`, `lm_report`,
`translation_report`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from schemas import names


def build_parser() -> argparse.ArgumentParser:
    from lstm_model import bless

    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.report",
        description="Evaluation report (HTML + PNG), baseline and blessing for an existing trained model directory.",
    )
    parser.add_argument(
        "--model_dir", required=True, help="Trained model directory (config.json, metrics.json, model_info.json)."
    )
    parser.add_argument(
        "--dataset_dir", default=None, help="Ingested dataset; default: the one recorded in model_info.json."
    )
    bless.add_blessing_flags(parser)
    return parser


def run(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)  # before the TensorFlow imports: --help stays fast

    from lstm_model import data, tasks
    from schemas.cli import UserError, setup_logging

    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO)
    model_path = Path(args.model_dir)
    missing = [name for name in (names.MODEL_METRICS_FILE, names.MODEL_INFO_FILE) if not (model_path / name).exists()]
    if missing:
        raise UserError(f"--model_dir {args.model_dir} lacks {', '.join(missing)}: not a trained model directory")
    try:
        info = json.loads((model_path / names.MODEL_INFO_FILE).read_text())
    except ValueError as error:
        raise UserError(f"{model_path / names.MODEL_INFO_FILE} is not JSON: {error}") from None
    dataset_dir = args.dataset_dir or info.get("dataset_dir")
    if not dataset_dir:
        raise UserError("pass --dataset_dir (model_info.json does not name the dataset)")
    try:
        manifest = data.read_manifest(dataset_dir)
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    if info.get("dataset_fingerprint") and manifest.get("dataset_fingerprint") != info["dataset_fingerprint"]:
        raise UserError(
            f"{dataset_dir} (fingerprint {manifest.get('dataset_fingerprint')}) is not the dataset this model was trained on "
            f"({info['dataset_fingerprint']})"
        )
    task_name = info.get("task", names.TASK_CLASSIFICATION)
    task = tasks.get(task_name)
    if not hasattr(task, "report_existing"):
        raise UserError(
            f"a {task_name} model's report is written while it trains (python -m lstm_model.train); "
            "rewriting it alone is not supported"
        )
    return task.report_existing(str(model_path), dataset_dir, args)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
