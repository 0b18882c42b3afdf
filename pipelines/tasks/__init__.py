"""The task seam of the pipelines: what differs between classification, language modelling, ...

One module per task (``pipelines/tasks/TASK.py``) defines ``TASK``, an instance of
`pipelines.tasks.base.Task`: a raw record's fields and checks, how records are split,
their TFRecord features, the cleaning/tokenizer defaults, the validation suites and the
run-level figures they check, and for bulk inference the model handler, the output row
and its Arrow schema. The pipelines (`ingest`, `score`, `generate`) ask the task and
never branch on its name; adding a task adds a module here (and one in lstm_model/tasks).
"""

from __future__ import annotations

import importlib
import pkgutil

from pipelines.tasks.base import Task
from schemas.cli import UserError


def available() -> list[str]:
    """Task names: the modules of this package other than `base`."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_"))


def get(name: str) -> Task:
    """The task called `name`; UserError naming the known ones if there is none."""
    if name not in available():
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}").TASK
