"""Command lines: --help, and one-line errors with a non-zero exit instead of tracebacks."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


HELP_MODULES = [
    "pipelines.ingest",
    "pipelines.score",
    "pipelines.generate",
    "pipelines.translate",
    "lstm_model.train",
    "lstm_model.pretrain",
    "pipelines.datasets",
    "lstm_model.baseline",
    "lstm_model.report",
    "lstm_model.bless",
]

# Runs `python -m MODULE --help` for every module in one interpreter (runpy, as -m does), so the
# imports are paid once: prints "MODULE<TAB>exit code<TAB>whether usage: was printed" per module.
_HELP_SCRIPT = """
import contextlib, io, runpy, sys
for module in sys.argv[1:]:
    sys.argv = [module, "--help"]
    out = io.StringIO()
    code = None
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = exit.code
    print(module, code, "usage:" in out.getvalue(), sep="\\t", flush=True)
"""


def test_help():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT, *HELP_MODULES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines() if line.count("\t") == 2]
    assert lines == [[module, "0", "True"] for module in HELP_MODULES], result.stdout + result.stderr


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_ingest_with_a_wrong_path(tmp_path):
    assert_one_line_error(
        run("pipelines.ingest", "--input", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out")),
        "no aclImdb layout",
    )


def test_score_with_a_missing_model(tmp_path):
    result = run(
        "pipelines.score",
        "--input",
        str(tmp_path),
        "--model_dir",
        str(tmp_path / "nomodel"),
        "--output_dir",
        str(tmp_path / "o"),
    )
    assert_one_line_error(result, "does not exist")


def test_train_without_a_dataset(tmp_path):
    assert_one_line_error(
        run("lstm_model.train", "--dataset_dir", str(tmp_path), "--model_dir", str(tmp_path / "m")),
        "run the ingest pipeline first",
    )


def test_score_refuses_an_unblessed_model(mini_model, tmp_path):
    """The tiny test model does not beat the baseline: scoring stops with one line unless --allow_unblessed."""
    result = run(
        "pipelines.score", "--input", str(tmp_path), "--model_dir", str(mini_model), "--output_dir", str(tmp_path / "o")
    )
    assert_one_line_error(result, "is not blessed (test accuracy")
    assert "pass --allow_unblessed" in result.stderr
    assert not (tmp_path / "o").exists()
