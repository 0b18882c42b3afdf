"""Transfer figures (README, "Transfer"): what a causal word LM pretrained on IMDB buys a classifier with 1k and 5k labels.

    python -m bench.transfer subsets --input data/raw/aclImdb --output_dir data/raw/imdb_transfer
    python -m bench.transfer table --models_dir models/imdb_transfer

`subsets` writes `n1000/` and `n5000/`: aclImdb trees of symlinks to the raw files (nothing is
copied or modified) for `pipelines.ingest --input_format aclimdb`. Train: 500 + 500 and
2,500 + 2,500 reviews drawn with a fixed seed (the 1k set is part of the 5k set); test: the same
2,500 + 2,500 test reviews in both. `table` reads MODELS_DIR/n{SIZE}_{scratch|pretrained...}_s{SEED}/
metrics.json and prints test accuracy and ROC-AUC per run as a Markdown table.
`make transfer-figures` runs the whole chain (ingest with the LM's vocabulary, train, table).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from pathlib import Path

SIZES = (1000, 5000)
TEST_SIZE = 5000
SEED = 0
_RUN = re.compile(r"n(?P<size>\d+)_(?P<start>[a-z0-9_]+?)_s(?P<seed>\d+)$")


def _pick(folder: Path, count: int, seed: int) -> list[Path]:
    files = sorted(folder.glob("*.txt"))
    return random.Random(seed).sample(files, count)


def _link(files: list[Path], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        link = target / path.name
        if not link.is_symlink():
            os.symlink(path.resolve(), link)


def build(input_dir: str, output_dir: str, sizes=SIZES, test_size: int = TEST_SIZE, seed: int = SEED) -> None:
    root, out = Path(input_dir), Path(output_dir)
    for label in ("neg", "pos"):
        test = _pick(root / "test" / label, test_size // 2, seed)
        train = _pick(root / "train" / label, max(sizes) // 2, seed)  # nested: the first n of one draw
        for size in sizes:
            _link(train[: size // 2], out / f"n{size}" / "train" / label)
            _link(test, out / f"n{size}" / "test" / label)


def table(models_dir: str) -> str:
    """A Markdown table of every run's test figures under `models_dir` (and the TF-IDF baseline of its dataset)."""

    def fmt(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        "| labels | start | seed | test accuracy | test ROC-AUC | epochs (best) | train min | TF-IDF baseline accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for folder in sorted(Path(models_dir).iterdir()):
        match = _RUN.match(folder.name)
        if match and (folder / "metrics.json").is_file():
            rows.append((int(match["size"]), match["start"], int(match["seed"]), folder))
    for size, start, seed, folder in sorted(rows):
        metrics = json.loads((folder / "metrics.json").read_text())
        test, baseline = metrics.get("test", {}), metrics.get("baseline", {}).get("test", {})
        minutes = metrics.get("train_seconds")
        lines.append(
            f"| {size:,} | {start} | {seed} | {fmt(test.get('accuracy'))} | {fmt(test.get('roc_auc'))} | "
            f"{metrics.get('epochs_run', '-')} ({metrics.get('best_epoch', '-')}) | "
            f"{'-' if minutes is None else f'{minutes / 60:.1f}'} | {fmt(baseline.get('accuracy'))} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    subsets = commands.add_parser("subsets", help="Balanced labelled subsets of aclImdb as symlink trees.")
    subsets.add_argument("--input", default="data/raw/aclImdb")
    subsets.add_argument("--output_dir", default="data/raw/imdb_transfer")
    tab = commands.add_parser("table", help="Test accuracy and ROC-AUC of the trained runs, as Markdown.")
    tab.add_argument("--models_dir", default="models/imdb_transfer")
    args = parser.parse_args(argv)
    if args.command == "subsets":
        build(args.input, args.output_dir)
        print(f"wrote {', '.join(f'{args.output_dir}/n{s}' for s in SIZES)}")
    else:
        print(table(args.models_dir))


if __name__ == "__main__":
    main()
