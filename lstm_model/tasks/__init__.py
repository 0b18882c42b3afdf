"""The task seam of the model side: one module per task (``lstm_model/tasks/TASK.py``).

A task module has ``build_parser()`` and ``run(argv) -> metrics``: it trains the task's
model on a dataset of that task, evaluates it against the task's baseline, exports one
SavedModel with the preprocessing inside, writes its report and blessing. The training
CLI (`lstm_model.train`) reads the dataset manifest's "task" and hands over; it never
branches on the name. Adding a task adds a module here and one in pipelines/tasks.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from schemas.cli import UserError


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> ModuleType:
    """The task module called `name`; UserError naming the known ones if there is none."""
    if name not in available():
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}")
