"""`common.exit_fast_in_sdk_worker`: a Beam SDK worker process skips TensorFlow's slow teardown,
keeps its exit status and flushes its output; any other process is left alone."""

import atexit
import subprocess
import sys
import textwrap

import pytest

from pipelines import common

# Pretends to be `python -m apache_beam.runners.worker.sdk_worker_main` (what __main__.__spec__ names),
# registers an exit handler that would print if Python's own exit handlers ran, then ends as asked.
WORKER = textwrap.dedent(
    """
    import atexit, sys, types
    sys.modules["__main__"].__spec__ = types.SimpleNamespace(name="apache_beam.runners.worker.sdk_worker_main")
    from pipelines import common
    atexit.register(print, "slow teardown ran")
    common.exit_fast_in_sdk_worker()
    common.exit_fast_in_sdk_worker()  # called after each heavy import: registering twice is harmless
    sys.stdout.write("unflushed output")
    if sys.argv[1] == "raise":
        raise RuntimeError("bundle failed")
    """
)


@pytest.mark.parametrize("how, status", [("return", 0), ("raise", 1)])
def test_worker_exits_without_teardown_and_keeps_its_status(how, status):
    result = subprocess.run([sys.executable, "-c", WORKER, how], capture_output=True, text=True, timeout=120)
    assert result.returncode == status
    assert result.stdout == "unflushed output"  # flushed, and the teardown handler never ran
    assert ("RuntimeError: bundle failed" in result.stderr) == (how == "raise")


def test_other_processes_are_left_alone():
    before = atexit._ncallbacks()
    common.exit_fast_in_sdk_worker()
    assert atexit._ncallbacks() == before


# A worker's lean TensorFlow import: what Keras would load only for its scikit-learn wrappers and
# matplotlib plots stays out, the cleaning function still runs, and the packages import afterwards.
LEAN_WORKER = textwrap.dedent(
    """
    import sys, types
    sys.modules["__main__"].__spec__ = types.SimpleNamespace(name="apache_beam.runners.worker.sdk_worker_main")
    from pipelines import common
    preprocessing = common.import_in_worker("textprep.preprocessing")
    print(sorted(m for m in common.WORKER_SKIPPED_IMPORTS if m in sys.modules))
    print(preprocessing.clean_batch(["<b>Fine</b> &amp; DANDY"], True))
    import sklearn, matplotlib  # the finder is gone: a later import works as usual
    print("importable")
    """
)


def test_worker_imports_tensorflow_without_kerass_optional_integrations():
    result = subprocess.run([sys.executable, "-c", LEAN_WORKER], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["[]", "['fine & dandy']", "importable"]


def test_other_processes_import_as_usual():
    finders = list(sys.meta_path)
    assert common.import_in_worker("json") is sys.modules["json"]
    assert sys.meta_path == finders
