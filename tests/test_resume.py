"""A language model training run killed with SIGKILL continues with --resume and ends as an uninterrupted one would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas import names

REPO = Path(__file__).resolve().parent.parent
FLAGS = [
    "--embedding_dim",
    "8",
    "--lstm_units",
    "16",
    "--num_layers",
    "1",
    "--dropout",
    "0",
    "--batch_size",
    "4",
    "--sequence_length",
    "16",
    "--steps_per_epoch",
    "15",
    "--epochs",
    "4",
    "--early_stopping_patience",
    "0",
    "--verbose",
    "0",
]


def _train(dataset_dir: Path, model_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "lstm_model.train", "--dataset_dir", str(dataset_dir)]
    command += ["--model_dir", str(model_dir), *FLAGS, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from pipelines import ingest

    text = (REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:20_000]
    source = tmp_path_factory.mktemp("text") / "input.txt"
    source.write_text(text, encoding="utf-8")
    out = tmp_path_factory.mktemp("dataset")
    ingest.run(["--task", "language_model", "--input", str(source), "--input_format", "text"]
               + ["--split_by", "position", "--output_dir", str(out)])  # fmt: skip
    return out


def test_killed_training_resumes_from_its_checkpoint(dataset, tmp_path):
    killed_dir = tmp_path / "killed"
    process = _train(dataset, killed_dir)
    state_file = killed_dir / "checkpoints" / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 1:
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed:\n" + process.stdout.read()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stopped_at = json.loads(state_file.read_text())["epoch"]
    assert 1 <= stopped_at < 4
    assert not (killed_dir / names.MODEL_METRICS_FILE).exists()  # no metrics beside a half-trained model

    # Without --resume the directory is refused, with a hint; with it, training goes on.
    refused = _train(dataset, killed_dir)
    output, _ = refused.communicate(timeout=300)
    assert refused.returncode == 2 and "--resume continues it" in output and "Traceback" not in output
    resumed = _train(dataset, killed_dir, "--resume")
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    killed_metrics = json.loads((killed_dir / names.MODEL_METRICS_FILE).read_text())
    assert killed_metrics["epochs_run"] == 4
    history = json.loads((killed_dir / names.MODEL_HISTORY_FILE).read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4]
    assert history[-1]["steps"] == 4 * 15

    # The same run, never interrupted: the same windows, weights and optimizer state give the same losses.
    whole = _train(dataset, tmp_path / "whole")
    output, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, output
    whole_history = json.loads((tmp_path / "whole" / names.MODEL_HISTORY_FILE).read_text())
    for resumed_entry, whole_entry in zip(history, whole_history, strict=True):
        assert resumed_entry["val_loss"] == pytest.approx(whole_entry["val_loss"], abs=2e-3)
