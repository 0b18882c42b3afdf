"""Ingest and bulk scoring killed with SIGKILL mid-run: the same command again, without --overwrite,
completes and gives what an uninterrupted run gives; a manifest is never beside partial outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import common, ingest, score
from schemas import names

REPO = Path(__file__).resolve().parent.parent
INGEST_FLAGS = ["--input_format", "jsonl", "--vocab_size", "2000", "--max_quarantine_rate", "1"]
SIGNS_OF_INGEST = (names.INPUTS_FILE, "**/*-spill-*")
SIGNS_OF_SCORING = (f"{names.SCORED_DIR}/*-spill-*",)


@pytest.fixture(scope="module")
def reviews(mini_dir, tmp_path_factory) -> Path:
    """160 reviews of the IMDB slice as one JSONL file (small: each run is mostly start-up)."""
    rows = []
    for split in (names.SPLIT_TRAIN, names.SPLIT_TEST):
        for label in ("pos", "neg"):
            for path in sorted((mini_dir / split / label).glob("*.txt"))[:40]:
                rows.append({"id": f"{split}-{label}-{path.stem}", "text": path.read_text(), "label": label})
                rows[-1]["split"] = split
    target = tmp_path_factory.mktemp("reviews") / "reviews.jsonl"
    target.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return target


def _start(module: str, argv: list[str], log: Path) -> subprocess.Popen:
    """The command in a subprocess, its output to `log` (a file: a full pipe would stall it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log.open("w") as handle:
        return subprocess.Popen([sys.executable, "-m", module, *argv], env=env, stdout=handle, stderr=subprocess.STDOUT)


def _kill_mid_run(process: subprocess.Popen, out: Path, signs: tuple[str, ...], timeout: float = 900) -> list[str]:
    """SIGKILLs `process` (its output in OUT.log) once `out` holds a path matching each glob in `signs`.

    Returns what it left in `out`.
    """
    deadline = time.monotonic() + timeout
    while not all(next(out.glob(sign), None) is not None for sign in signs):
        assert process.poll() is None, "the run ended before it could be killed:\n" + Path(f"{out}.log").read_text()
        assert time.monotonic() < deadline, f"no {signs} in {out} after {timeout} s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    left = sorted(str(path.relative_to(out)) for path in out.rglob("*"))
    assert not (out / names.MANIFEST_FILE).exists(), left  # no manifest beside partial outputs
    assert common.RUN_MARKER_FILE in left, left
    return left


def _rerun(module: str, argv: list[str]) -> str:
    """The same command again: no --overwrite needed, no error."""
    log = Path(argv[-1] + ".rerun.log")
    process = _start(module, argv, log)
    process.wait(timeout=900)
    output = log.read_text()
    assert process.returncode == 0 and "Traceback" not in output, output
    assert not [line for line in output.splitlines() if line.startswith("error:")], output
    return output


def _assert_no_scratch(out: Path) -> None:
    scratch = [p.name for p in out.rglob("*") if "-spill-" in p.name or p.name.endswith(".tmp")]
    assert not scratch and not (out / common.RUN_MARKER_FILE).exists(), scratch


def _tfrecords(directory: Path) -> dict[str, list[bytes]]:
    import tensorflow as tf

    records = {}
    for path in sorted(directory.glob("*/*.tfrecord.gz")):
        dataset = tf.data.TFRecordDataset(str(path), compression_type="GZIP")
        records[str(path.relative_to(directory))] = [record.numpy() for record in dataset]
    return records


def test_killed_ingest_reruns_to_the_same_dataset(reviews, tmp_path):
    argv = ["--input", str(reviews), *INGEST_FLAGS]
    reference = ingest.run([*argv, "--output_dir", str(tmp_path / "whole")])

    killed = tmp_path / "killed"
    # Killed once the inputs are listed and records wait in spill files (scratch the rerun must not trip on).
    left = _kill_mid_run(
        _start("pipelines.ingest", [*argv, "--output_dir", str(killed)], Path(f"{killed}.log")), killed, SIGNS_OF_INGEST
    )
    assert names.INPUTS_FILE in left and any("-spill-" in path for path in left), left
    _rerun("pipelines.ingest", [*argv, "--output_dir", str(killed)])

    manifest = json.loads((killed / names.MANIFEST_FILE).read_text())
    assert manifest["dataset_fingerprint"] == reference["dataset_fingerprint"]
    assert manifest["outputs"] == reference["outputs"]  # every file, byte for byte (sha256)
    assert manifest["counts"] == reference["counts"]
    rerun_records, whole_records = _tfrecords(killed), _tfrecords(tmp_path / "whole")
    assert rerun_records == whole_records and sum(map(len, whole_records.values())) == manifest["counts"]["records_out"]
    _assert_no_scratch(killed)


def test_killed_scoring_reruns_to_the_same_parquet(reviews, mini_model, tmp_path):
    import pyarrow.parquet as pq

    argv = ["--input", str(reviews), "--input_format", "jsonl", "--model_dir", str(mini_model)]
    argv += ["--allow_unblessed", "--passthrough_columns", "label", "--batch_size", "16"]
    reference = score.run([*argv, "--output_dir", str(tmp_path / "whole")])

    killed = tmp_path / "killed"
    # Killed once scored rows are being written (after the model is loaded and has run).
    _kill_mid_run(
        _start("pipelines.score", [*argv, "--output_dir", str(killed)], Path(f"{killed}.log")), killed, SIGNS_OF_SCORING
    )
    _rerun("pipelines.score", [*argv, "--output_dir", str(killed)])

    manifest = json.loads((killed / names.MANIFEST_FILE).read_text())
    assert manifest["counts"] == reference["counts"] and manifest["predicted"] == reference["predicted"]
    assert sorted(manifest["outputs"]) == sorted(reference["outputs"])

    def rows(out: Path) -> list[dict]:
        table = pq.read_table(out / names.SCORED_DIR).drop_columns(["scored_at"])
        return sorted(table.to_pylist(), key=lambda row: row["id"])

    rerun_rows, whole_rows = rows(killed), rows(tmp_path / "whole")
    assert len(rerun_rows) == len(whole_rows) == manifest["counts"]["scored"]
    for rerun_row, whole_row in zip(rerun_rows, whole_rows, strict=True):
        assert rerun_row == {**whole_row, "probability": pytest.approx(whole_row["probability"], abs=1e-6)}
    _assert_no_scratch(killed)


def test_directory_not_ours_still_needs_overwrite(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("someone else's file")
    with pytest.raises(common.UserError, match="no run of ours left; pass --overwrite"):
        common.prepare_output_dir(str(foreign), overwrite=False)
    assert (foreign / "notes.txt").exists()

    # A complete run (manifest.json), even one killed before its marker was removed, is not cleared either.
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / names.MANIFEST_FILE).write_text("{}")
    (finished / common.RUN_MARKER_FILE).write_text("{}")
    with pytest.raises(common.UserError, match="a previous run"):
        common.prepare_output_dir(str(finished), overwrite=False)

    # An unfinished run of ours (marker, no manifest) is cleared, folders included, and marked again.
    unfinished = tmp_path / "unfinished"
    (unfinished / "train" / "data-spill-0123").mkdir(parents=True)
    (unfinished / "train" / "data-spill-0123" / "x.spill").write_bytes(b"\0")
    (unfinished / names.INPUTS_FILE).write_text("a\tb\t1\n")
    (unfinished / common.RUN_MARKER_FILE).write_text("{}")
    common.prepare_output_dir(str(unfinished), overwrite=False)
    assert sorted(p.name for p in unfinished.iterdir()) == [common.RUN_MARKER_FILE]
    common.finish_output_dir(str(unfinished))
    assert not any(unfinished.iterdir())
