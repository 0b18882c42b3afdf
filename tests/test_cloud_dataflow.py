"""Ingest and classification scoring build their Dataflow jobs offline (DataflowRunner --dry_run), and the
launching process's duties that Dataflow changes: worker paths, dated outputs, the manifest written by the job.

Generation and translation have the same dry-run test beside their models (test_language_model.py,
test_translation_model.py). `make cloud-check` runs every `dataflow` test.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from pipelines import cloud, ingest, score
from schemas import names
from schemas.cli import UserError
from tests import cloud_check

pytestmark = pytest.mark.cloud  # make cloud-check (CI runs it after make test)

SHAKESPEARE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
INGEST_STEPS = ["Read", "CheckRows", "DropDuplicates", "AssignSplit", "WriteRunSummary", "WriteManifest"]


def test_dataflow_dry_run_ingest_classification(tmp_path, mini_dir):
    root = tmp_path / "bucket"
    root.mkdir()
    job_file = tmp_path / "ingest_job.json"
    with cloud_check.gs_bucket(root):
        raw = cloud_check.upload(root, mini_dir, "raw/aclImdb")
        out = f"gs://{cloud_check.BUCKET}/datasets/imdb/{{date}}"
        description = ingest.run(["--input", raw, "--output_dir", out, *cloud_check.dataflow_args(job_file)])
    cloud_check.check_job(
        description,
        job_file,
        steps=[*INGEST_STEPS, "BuildVocabulary", "WriteSplits", "Quarantine"],
        local_roots=[str(root), str(mini_dir)],
        gs_paths=[raw, out.replace("{date}", datetime.datetime.now(datetime.UTC).date().isoformat())],
    )
    assert not any(root.glob("datasets/**/*")), "a dry run writes nothing"


def test_dataflow_dry_run_ingest_translation(tmp_path):
    import gzip

    from tests import translation_fixture

    root = tmp_path / "bucket"
    (root / "raw").mkdir(parents=True)
    # Small aligned gzip files: the parallel reader counts their lines before the graph is built.
    for stem, split in (("train", names.SPLIT_TRAIN), ("val", names.SPLIT_VALIDATION)):
        for language in ("de", "en"):
            lines = translation_fixture.read_lines(split, language, 20)
            with gzip.open(root / "raw" / f"{stem}.{language}.gz", "wt", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
    job_file = tmp_path / "ingest_mt_job.json"
    with cloud_check.gs_bucket(root) as bucket:
        argv = ["--task", "translation", "--input_format", "parallel", "--input", f"{bucket}/raw",
                "--source_language", "de", "--target_language", "en", "--output_dir", f"{bucket}/datasets/mt"]  # fmt: skip
        description = ingest.run([*argv, *cloud_check.dataflow_args(job_file)])
    cloud_check.check_job(
        description,
        job_file,
        steps=[*INGEST_STEPS, "CleanText[target]", "BuildVocabulary[target]", "ToTokenIds[target]"],
        local_roots=[str(root)],
        gs_paths=[f"gs://{cloud_check.BUCKET}/datasets/mt"],
    )


def test_dataflow_dry_run_score(tmp_path, mini_model, mini_dir):
    root = tmp_path / "bucket"
    root.mkdir()
    job_file = tmp_path / "score_job.json"
    with cloud_check.gs_bucket(root) as bucket:
        model = cloud_check.upload(root, mini_model, "models/sentiment")
        raw = cloud_check.upload(root, mini_dir, "raw/aclImdb")
        argv = ["--input", raw, "--model_dir", model, "--output_dir", f"{bucket}/scored/{{date}}", "--allow_unblessed"]
        description = score.run(
            [*argv, *cloud_check.dataflow_args(job_file, "--number_of_worker_harness_threads", "1")]
        )
    cloud_check.check_job(
        description,
        job_file,
        steps=["Read", "RunInference", "WriteRunSummary", "WriteManifest"],
        local_roots=[str(root), str(mini_model), str(mini_dir)],
        gs_paths=[model, raw],
    )
    assert description["pipeline_options"]["number_of_worker_harness_threads"] == 1


def test_local_paths_refused_with_dataflow(tmp_path, mini_dir):
    argv = ["--input", str(mini_dir), "--output_dir", f"gs://{cloud_check.BUCKET}/x"]
    with pytest.raises(UserError, match=r"^--input .*: Dataflow workers cannot read this machine's files"):
        ingest.run([*argv, *cloud_check.dataflow_args(tmp_path / "job.json")])


def test_date_placeholder():
    assert cloud.expand_date("gs://b/scored/{date}/x", datetime.date(2026, 1, 31)) == "gs://b/scored/2026-01-31/x"
    assert cloud.expand_date("out", datetime.date(2026, 1, 31)) == "out"
    assert cloud.expand_date(None) is None


def test_manifest_written_by_the_job_equals_the_launchers(tmp_path):
    """--manifest_in_pipeline yes (what Dataflow does) on the local runner: the same manifest, marker gone."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    manifests = {}
    for mode in ("no", "yes"):
        out = tmp_path / mode
        manifests[mode] = ingest.run(
            ["--task", "language_model", "--input", str(corpus), "--input_format", "text", "--split_by", "position",
             "--output_dir", str(out), "--manifest_in_pipeline", mode]
        )  # fmt: skip
        assert not (out / "_RUN_IN_PROGRESS.json").exists()
        assert json.loads((out / names.MANIFEST_FILE).read_text())["counts"] == manifests[mode]["counts"]
    drop = ("run", "options", "dataset_fingerprint", "outputs", "_reports")
    same = [{k: v for k, v in m.items() if k not in drop} for m in manifests.values()]
    assert same[0] == same[1]
    outputs = [{Path(k).name: v["sha256"] for k, v in m["outputs"].items()} for m in manifests.values()]
    assert outputs[0] == outputs[1]
