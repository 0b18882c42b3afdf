"""Shared fixtures: the IMDB slice, and one ingest -> train -> score run reused by several tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
MINI = REPO.parent / "shared" / "data" / "imdb" / "mini" / "aclImdb"
# A tiny, fast model: the end-to-end tests check plumbing, not accuracy.
TINY_TRAIN_FLAGS = [
    "--epochs",
    "1",
    "--embedding_dim",
    "16",
    "--lstm_units",
    "8",
    "--max_tokens",
    "128",
    "--batch_size",
    "64",
]


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    if not (MINI / "train" / "pos").is_dir():
        pytest.fail(f"the IMDB slice is missing at {MINI} (see ../shared/data/README.md)")
    return MINI


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory, mini_dir) -> tuple[Path, dict]:
    """The IMDB slice ingested once per session: (dataset_dir, manifest)."""
    from pipelines import ingest
    from tests import runner_buffers

    out = tmp_path_factory.mktemp("dataset")
    # The runner's buffers are measured on this run (test_end_to_end checks that records never wait in them).
    with runner_buffers.held_bytes() as held:
        manifest = ingest.run(
            ["--input", str(mini_dir), "--output_dir", str(out), "--overwrite", "--vocab_size", "8000"]
        )
    runner_buffers.PEAKS["mini_ingest"] = held["peak"]
    return out, manifest


@pytest.fixture(scope="session")
def mini_model(tmp_path_factory, mini_dataset) -> Path:
    """A tiny classifier trained for one epoch on the ingested slice."""
    from lstm_model import train

    dataset_dir, _ = mini_dataset
    model_dir = tmp_path_factory.mktemp("model")
    train.run(
        [
            "--dataset_dir",
            str(dataset_dir),
            "--model_dir",
            str(model_dir),
            "--overwrite",
            "--verbose",
            "0",
            *TINY_TRAIN_FLAGS,
        ]
    )
    return model_dir
