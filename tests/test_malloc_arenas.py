"""`common.limit_malloc_arenas`: ingest caps glibc's malloc arenas in its own process and in the worker
processes it starts, and keeps a MALLOC_ARENA_MAX the user set. Each case runs in a new interpreter, so
the test process's own allocator is left as it was."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Applies the cap, then starts a child process the way Beam starts a local SDK worker (with this
# process's environment) and prints what the child sees.
PROBE = """
import subprocess, sys
from pipelines import common
print(common.limit_malloc_arenas())
child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.environ.get('MALLOC_ARENA_MAX'))"],
    capture_output=True, text=True, check=True,
)
print(child.stdout.strip())
"""


def _probe(arena_max: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if arena_max is not None:
        env["MALLOC_ARENA_MAX"] = arena_max
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cap_applies_here_and_reaches_worker_processes():
    assert _probe(None) == ["2", "2"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_users_setting_is_kept():
    assert _probe("5") == ["5", "5"]


def test_a_setting_that_is_not_a_number_is_left_alone():
    assert _probe("lots") == ["None", "lots"]
