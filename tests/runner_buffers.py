"""How many bytes Beam's local runner holds between stages: instrumentation for tests.

FnApiRunner keeps every PCollection that crosses a fused-stage boundary in its
own process's memory until the consuming stage has run: encoded elements in a
list buffer, or decoded values per key in a grouping buffer. A pipeline whose
records cross such a boundary (a Flatten of outputs of different stages, a
GroupByKey of records, a side input of records) then needs memory that grows
with the corpus. `held_bytes` measures the largest total, after every bundle,
of the buffers waiting for a stage and the side-input state. It wraps a method
of Beam's runner (pinned in constraints.txt), so it belongs in tests only.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator

from apache_beam.runners.portability.fn_api_runner import fn_runner

# Peaks measured by session fixtures, by name, for tests to check (see conftest.mini_dataset).
PEAKS: dict[str, int] = {}


def _buffer_bytes(buffer) -> int:
    inputs = getattr(buffer, "_inputs", None)  # ListBuffer: encoded elements
    if inputs is not None:
        return sum(len(element) for element in inputs)
    table = getattr(buffer, "_table", None)  # GroupingBuffer: {encoded key: [decoded values]}
    if table is not None:
        return sum(len(key) + len(pickle.dumps(values)) for key, values in table.items())
    return 0


def _held(context) -> int:
    total = sum(_buffer_bytes(buffer) for buffer in context.pcoll_buffers.values())
    for queue in (context.queues.ready_inputs, context.queues.watermark_pending_inputs):
        for _, data_input in list(queue._q):
            total += sum(_buffer_bytes(buffer) for buffer in data_input.data.values())
    state = context.worker_handler_manager.state_servicer._state
    total += sum(len(item) for values in state.values() if isinstance(values, list) for item in values)
    return total


@contextlib.contextmanager
def held_bytes() -> Iterator[dict[str, int]]:
    """Yields {"peak": bytes}, updated after every bundle the local runner executes inside the block."""
    peak = {"peak": 0}
    original = fn_runner.FnApiRunner._execute_bundle

    def execute_bundle(self, context, bundle_context_manager, bundle_input):
        result = original(self, context, bundle_context_manager, bundle_input)
        peak["peak"] = max(peak["peak"], _held(context))
        return result

    fn_runner.FnApiRunner._execute_bundle = execute_bundle
    try:
        yield peak
    finally:
        fn_runner.FnApiRunner._execute_bundle = original
