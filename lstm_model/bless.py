"""Blessing: is a newly trained model good enough to score with?

A model is blessed only if its test metric (accuracy by default) beats

* the non-neural baseline (`lstm_model.baseline`, same splits, same evaluation) by more
  than `--bless_margin`, and
* when `--previous_model_dir` names a previously blessed model evaluated on the same
  dataset, that model's figure by more than `--previous_margin`.

Training decides automatically (`lstm_model.train`), writing MODEL_DIR/blessing.json:

    {"blessed": false, "reason": "...", "metric": "accuracy", "split": "test",
     "margins": {"baseline": 0.0, "previous": 0.0}, "figures": {"model": .., "baseline": .., "previous": ..},
     "checks": [{"against": "baseline", "model": .., "reference": .., "gain": .., "margin": .., "passed": ..}, ...],
     "model_version": "lstm-...", "decided_at": "..."}

The scoring pipeline refuses a model whose blessing.json is missing or not blessed
unless given `--allow_unblessed`. Decide again from the stored metrics (other margins,
another previous model), without retraining:

    python -m lstm_model.bless --model_dir models/imdb_full --previous_model_dir models/imdb_full_v1 --bless_margin 0.01
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from schemas.names import MODEL_BLESSING_FILE as BLESSING_FILE

# The metrics a blessing can compare, with their direction: +1 higher is better, -1 lower is better.
# Each task's model names its deciding metric and split (classification: test accuracy; a language
# model: validation nats per token, since one long text such as tiny Shakespeare has no test split;
# translation: test BLEU).
METRICS = {
    "accuracy": 1,
    "f1": 1,
    "roc_auc": 1,
    "average_precision": 1,
    "nats_per_token": -1,
    "bits_per_char": -1,
    "bleu": 1,  # translation: sacreBLEU corpus BLEU, 0-100
    "chrf": 1,  # translation: sacreBLEU chrF, 0-100
}
DEFAULT_METRIC = "accuracy"
SPLIT = "test"


def add_blessing_flags(parser: argparse.ArgumentParser) -> None:
    """--bless_margin, --previous_model_dir, --previous_margin (train, report and bless CLIs)."""
    group = parser.add_argument_group("blessing (is the model good enough to score with?)")
    group.add_argument(
        "--bless_margin",
        type=float,
        default=0.0,
        help="Blessed only if the deciding metric (a classifier's test accuracy, a language model's validation nats "
        "per token) beats the baseline's by more than this (absolute; default: %(default)s).",
    )
    group.add_argument(
        "--previous_model_dir",
        default=None,
        help="A previously blessed model directory (same dataset) the new model must also beat.",
    )
    group.add_argument(
        "--previous_margin",
        type=float,
        default=0.0,
        help="Required gain in the deciding metric over --previous_model_dir (absolute; default: %(default)s).",
    )


def _check(
    against: str, name: str, model: float, reference: float | None, margin: float, direction: int = 1
) -> dict[str, Any]:
    if reference is None:
        return {
            "against": against,
            "name": name,
            "model": model,
            "reference": None,
            "gain": None,
            "margin": margin,
            "passed": False,
        }
    # The improvement in the metric's good direction; rounded: 0.87 - 0.86 is not "more than 0.01".
    gain = round((model - reference) * direction, 10)
    return {
        "against": against,
        "name": name,
        "model": model,
        "reference": reference,
        "gain": gain,
        "margin": margin,
        "passed": gain > margin,
    }


def decide(
    model_metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    previous: dict[str, Any] | None = None,
    metric: str = DEFAULT_METRIC,
    baseline_margin: float = 0.0,
    previous_margin: float = 0.0,
    split: str = SPLIT,
) -> dict[str, Any]:
    """The blessing decision from metrics dicts (each with a `split` section, "test" by default).

    Args:
      model_metrics: the new model's metrics.json.
      baseline_metrics: the baseline's metrics (`lstm_model.baseline`).
      previous: `load_previous(...)` of a previously blessed model, or None.
      metric: one of METRICS (its direction says whether higher or lower is better).
      baseline_margin, previous_margin: the gain required over each, in absolute metric units;
        the model must improve on the reference by MORE than the margin (a tie at margin 0 fails).
      split: the metrics section compared.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    direction = METRICS[metric]
    value = model_metrics[split].get(metric)
    if value is None:
        raise ValueError(f"the model's {split} metrics have no {metric}")
    checks = [
        _check(
            "baseline",
            baseline_metrics.get("model", "baseline"),
            value,
            baseline_metrics[split].get(metric),
            baseline_margin,
            direction,
        )
    ]
    if previous is not None:
        name = previous.get("model_version") or previous["model_dir"]
        reference = previous["metrics"].get(split, {}).get(metric)
        checks.append(_check("previous", name, value, reference, previous_margin, direction))
    blessed = all(check["passed"] for check in checks)

    def describe(check):
        if check["reference"] is None:
            return f"{check['against']} {check['name']} has no {split} {metric}"
        verb = "beats" if check["passed"] else "does not beat"
        return (
            f"{verb} {check['against']} {check['name']} ({check['reference']:.4f}) by more than {check['margin']:g}"
            f"{'' if direction > 0 else ' (lower is better)'} "
            f"(gain {check['gain']:+.4f})"
        )

    reason = f"{split} {metric} {value:.4f} " + "; ".join(describe(check) for check in checks)
    return {
        "blessed": blessed,
        "reason": reason,
        "metric": metric,
        "split": split,
        "margins": {"baseline": baseline_margin, "previous": previous_margin if previous is not None else None},
        "figures": {
            "model": value,
            "baseline": checks[0]["reference"],
            "previous": checks[1]["reference"] if previous is not None else None,
        },
        "checks": checks,
        "previous_model_dir": previous["model_dir"] if previous is not None else None,
        "previous_model_version": previous.get("model_version") if previous is not None else None,
        "previous_blessed": previous.get("blessed") if previous is not None else None,
        "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def load_previous(
    previous_model_dir: str, model_dir: str | None = None, dataset_fingerprint: str | None = None
) -> dict[str, Any]:
    """Metrics, version and blessing of a previous model; UserError if it cannot be compared.

    Comparable means evaluated on the same dataset (same fingerprint, so the same test split).
    """
    from schemas import names
    from schemas.cli import UserError

    path = Path(previous_model_dir)
    if model_dir is not None and path.resolve() == Path(model_dir).resolve():
        raise UserError(
            f"--previous_model_dir {previous_model_dir} is the --model_dir being written; name another model"
        )
    metrics_path = path / names.MODEL_METRICS_FILE
    if not metrics_path.exists():
        raise UserError(
            f"--previous_model_dir {previous_model_dir} has no {names.MODEL_METRICS_FILE}: not a trained model directory"
        )
    try:
        metrics = json.loads(metrics_path.read_text())
        info_path = path / names.MODEL_INFO_FILE
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        blessing = read_blessing(str(path))
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read --previous_model_dir {previous_model_dir}: {error}") from None
    if not {SPLIT, "validation"} & set(metrics):
        raise UserError(f"{metrics_path} has no test or validation metrics")
    previous_fingerprint = info.get("dataset_fingerprint")
    if dataset_fingerprint and previous_fingerprint and previous_fingerprint != dataset_fingerprint:
        raise UserError(
            f"--previous_model_dir {previous_model_dir} was evaluated on another dataset (fingerprint {previous_fingerprint}, "
            f"this one {dataset_fingerprint}): its test metrics are not comparable"
        )
    return {
        "model_dir": str(path),
        "model_version": info.get("model_version"),
        "metrics": metrics,
        "blessed": None if blessing is None else bool(blessing.get("blessed")),
    }


def write_blessing(model_dir: str, decision: dict[str, Any]) -> None:
    Path(model_dir, BLESSING_FILE).write_text(json.dumps(decision, indent=2) + "\n")


def read_blessing(model_dir: str) -> dict[str, Any] | None:
    """MODEL_DIR/blessing.json, or None if there is none (local paths)."""
    path = Path(model_dir, BLESSING_FILE)
    return json.loads(path.read_text()) if path.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.bless",
        description="Decide again whether a trained model is blessed, from its metrics.json (baseline included).",
    )
    parser.add_argument(
        "--model_dir", required=True, help="Trained model directory (metrics.json with a baseline section)."
    )
    parser.add_argument(
        "--metric",
        default=None,
        choices=sorted(METRICS),
        help="Metric compared (default: the one the model's task decides by, recorded in metrics.json as "
        '"deciding"; accuracy for older classifiers).',
    )
    add_blessing_flags(parser)
    return parser


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from schemas import names
    from schemas.cli import UserError

    args = build_parser().parse_args(argv)
    model_path = Path(args.model_dir)
    metrics_path = model_path / names.MODEL_METRICS_FILE
    if not metrics_path.exists():
        raise UserError(
            f"--model_dir {args.model_dir} has no {names.MODEL_METRICS_FILE}: not a trained model directory"
        )
    metrics = json.loads(metrics_path.read_text())
    if "baseline" not in metrics:
        raise UserError(
            f"{metrics_path} has no baseline section; run python -m lstm_model.report --model_dir {args.model_dir} first"
        )
    info_path = model_path / names.MODEL_INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    previous = (
        load_previous(args.previous_model_dir, args.model_dir, info.get("dataset_fingerprint"))
        if args.previous_model_dir
        else None
    )
    deciding = metrics.get("deciding") or {}
    metric = args.metric or deciding.get("metric", DEFAULT_METRIC)
    split = deciding.get("split", SPLIT)
    try:
        decision = decide(
            metrics, metrics["baseline"], previous, metric, args.bless_margin, args.previous_margin, split=split
        )
    except (ValueError, KeyError) as error:
        raise UserError(f"cannot decide from {metrics_path}: {error}") from None
    decision["model_version"] = info.get("model_version")
    write_blessing(args.model_dir, decision)
    metrics["blessing"] = {key: decision[key] for key in ("blessed", "reason", "metric", "margins")}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"{'BLESSED' if decision['blessed'] else 'NOT BLESSED'}: {decision['reason']} -> {model_path / BLESSING_FILE}",
        flush=True,
    )
    return decision


def main() -> None:
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
