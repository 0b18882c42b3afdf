"""Training-loop plumbing shared by the tasks that run their own loop (language model, translation).

* `prepare_model_dir`: a fresh, overwritten or resumed model directory (a resumed run must have the same config);
* `save_checkpoint` / `restore_checkpoint`: weights, optimizer variables and the loop's state (a JSON dict:
  epoch, step, seconds, history, best, ...) in MODEL_DIR/checkpoints, written so that a kill at any moment
  leaves the previous complete set: `--resume` after a `kill -9` continues from the last finished epoch;
* `cosine_learning_rate`: the cosine schedule from a peak down to a tenth of it (progress 0..1, measured by
  the caller in minutes of a --max_minutes budget or in steps).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_STATE = "state.json"


def save_checkpoint(directory: Path, model, state: dict[str, Any], best: bool) -> None:
    """Weights, optimizer variables and loop state, written so a kill mid-way leaves the previous set whole."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(directory / "last.weights.h5.tmp.weights.h5"))
    os.replace(directory / "last.weights.h5.tmp.weights.h5", directory / "last.weights.h5")
    np.savez(directory / "optimizer.tmp.npz", *[v.numpy() for v in model.optimizer.variables])
    os.replace(directory / "optimizer.tmp.npz", directory / "optimizer.npz")
    if best:
        shutil.copyfile(directory / "last.weights.h5", directory / "best.weights.h5.tmp")
        os.replace(directory / "best.weights.h5.tmp", directory / "best.weights.h5")
    # The state file goes last: it is what --resume trusts.
    (directory / (CHECKPOINT_STATE + ".tmp")).write_text(json.dumps(state, indent=2) + "\n")
    os.replace(directory / (CHECKPOINT_STATE + ".tmp"), directory / CHECKPOINT_STATE)


def restore_checkpoint(directory: Path, model) -> dict[str, Any]:
    """Load the last weights and optimizer variables into `model` (compiled with its optimizer); the loop state."""
    import numpy as np

    state = json.loads((directory / CHECKPOINT_STATE).read_text())
    model.load_weights(str(directory / "last.weights.h5"))
    saved = np.load(directory / "optimizer.npz", allow_pickle=False)  # arrays only: nothing is unpickled
    model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    if len(saved.files) != len(variables):
        raise ValueError(f"optimizer checkpoint has {len(saved.files)} variables, the model needs {len(variables)}")
    for variable, key in zip(variables, saved.files, strict=True):
        variable.assign(saved[key])
    return state


def prepare_model_dir(model_path: Path, config, overwrite: bool, resume: bool) -> bool:
    """True if the run resumes from MODEL_DIR/checkpoints; UserError if the directory cannot be used."""
    from schemas import names
    from schemas.cli import UserError

    checkpoint_state = model_path / CHECKPOINT_DIR / CHECKPOINT_STATE
    if resume:
        if not checkpoint_state.is_file():
            raise UserError(
                f"--resume: {model_path} has no checkpoint to resume from ({CHECKPOINT_DIR}/{CHECKPOINT_STATE})"
            )
        saved = json.loads((model_path / names.MODEL_CONFIG_FILE).read_text())
        if saved != config.to_dict():
            changed = sorted(k for k in set(saved) | set(config.to_dict()) if saved.get(k) != config.to_dict().get(k))
            raise UserError(f"--resume with another config than the stopped run's (differs in {changed})")
        return True
    if model_path.exists() and any(model_path.iterdir()):
        if not overwrite:
            hint = " (a stopped run: --resume continues it)" if checkpoint_state.is_file() else ""
            raise UserError(
                f"--model_dir {model_path} is not empty{hint}; pass --overwrite or choose another directory"
            )
        shutil.rmtree(model_path)
    return False


def cosine_learning_rate(peak: float, progress: float, floor: float = 0.1) -> float:
    """The rate at `progress` (0..1, clipped) of a cosine decay from `peak` down to `floor` x peak."""
    progress = min(max(progress, 0.0), 1.0)
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
