"""gs:// inputs and outputs that cannot be reached: exit 2, one line naming the path and the cause, in seconds.

No request leaves the machine: the Cloud Storage client is pointed at a closed local port
(STORAGE_EMULATOR_HOST) and the credentials at a file that does not exist.
"""

from __future__ import annotations

import time

import pytest

from pipelines import common, gcs, generate, ingest, score


@pytest.fixture(autouse=True)
def offline_gcs(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing listens: refused at once


def fails_fast_with(capsys, run, argv, *fragments):
    started = time.monotonic()
    code = common.main_with_user_errors(run, argv)
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert seconds < 15, f"{seconds:.1f} s"


def test_unreachable_gs_input(tmp_path, capsys):
    argv = ["--input", "gs://some-bucket/reviews/*.jsonl", "--input_format", "jsonl"]
    fails_fast_with(
        capsys,
        ingest.run,
        [*argv, "--output_dir", str(tmp_path / "out")],
        "--input gs://some-bucket/reviews/*.jsonl: cannot reach Cloud Storage (network): Connection refused",
        "credentials",
    )
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_gs_output_without_credentials(tmp_path, capsys):
    source = tmp_path / "reviews.jsonl"
    source.write_text('{"id": "1", "text": "good", "label": "pos"}\n')
    argv = ["--input", str(source), "--input_format", "jsonl", "--output_dir", "gs://some-bucket/datasets/x"]
    fails_fast_with(
        capsys, ingest.run, argv, "--output_dir gs://some-bucket/datasets/x:", "writing to Cloud Storage needs"
    )


@pytest.mark.parametrize("run", [score.run, generate.run], ids=["score", "generate"])
def test_scoring_and_generation_check_gs_paths_first(run, tmp_path, capsys):
    model = str(tmp_path / "model")  # never opened: the gs:// paths are checked before the model directory
    fails_fast_with(
        capsys,
        run,
        ["--input", "gs://some-bucket/in.txt", "--input_format", "lines", "--model_dir", model]
        + ["--output_dir", str(tmp_path / "out")],
        "--input gs://some-bucket/in.txt: cannot reach Cloud Storage",
    )
    source = tmp_path / "in.txt"
    source.write_text("a prompt\n")
    fails_fast_with(
        capsys,
        run,
        ["--input", str(source), "--input_format", "lines", "--model_dir", model]
        + ["--output_dir", "gs://some-bucket/out"],
        "--output_dir gs://some-bucket/out:",
    )


def test_a_probe_that_hangs_is_cut_short(monkeypatch):
    monkeypatch.setattr(gcs, "PROBE_TIMEOUT_S", 0.2)
    monkeypatch.setattr(gcs, "_probe", lambda *args: time.sleep(5))
    started = time.monotonic()
    with pytest.raises(common.UserError, match=r"--input gs://b/x: no answer from Cloud Storage within"):
        gcs.check_reachable({"--input": "gs://b/x", "--output_dir": "/tmp/local"})
    assert time.monotonic() - started < 2


def test_causes_in_a_few_words():
    import requests
    from google.api_core import exceptions as api_exceptions

    assert gcs.describe_error(api_exceptions.NotFound("no bucket"), "b") == "bucket b does not exist"
    forbidden = api_exceptions.Forbidden("x@y has no storage.objects.list")
    assert gcs.describe_error(forbidden, "b") == "access denied (x@y has no storage.objects.list)"
    error = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='storage.googleapis.com'): Failed to resolve")
    assert (
        gcs.describe_error(error, "b")
        == "cannot reach Cloud Storage (network): Failed to resolve (storage.googleapis.com)"
    )
    gcs.check_reachable({"--input": "/local/path", "--output_dir": None})  # local paths: nothing to probe
