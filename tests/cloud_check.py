"""Offline Dataflow checks: build each pipeline's job with DataflowRunner --dry_run and inspect the description.

Nothing here reaches Google Cloud. Building a job reads what the graph needs (input listings, the model
directory's model_info.json, vocabulary and blessing), so gs://BUCKET is served from a local folder for
the duration of a check (`gs_bucket`): Cloud Storage itself cannot run here; everything else (Beam's
DataflowRunner building the job, pickling every step, the pipeline options) is the real thing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

BUCKET = "lstm-cloud-check"
IMAGE = "europe-west1-docker.pkg.dev/lstm-project/lstm/lstm-text-pipeline:check"


def dataflow_args(job_file: Path, *extra: str) -> list[str]:
    """The options a scheduled CPU run passes (README 'Running on Google Cloud'), as a dry run."""
    return [
        "--runner", "DataflowRunner", "--dry_run", "True",
        "--project", "lstm-project", "--region", "europe-west1",
        "--temp_location", f"gs://{BUCKET}/tmp", "--staging_location", f"gs://{BUCKET}/staging",
        "--sdk_container_image", IMAGE, "--sdk_location", "container",
        "--experiments", "use_runner_v2",
        "--machine_type", "n2-standard-4", "--max_num_workers", "8",
        "--dataflow_job_file", str(job_file),
        *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def gs_bucket(root: Path):
    """gs://BUCKET/... read from `root`/... while the block runs (match, open, exists, size)."""
    from apache_beam.io.filesystem import FileMetadata, MatchResult
    from apache_beam.io.gcp import gcsfilesystem
    from apache_beam.io.localfilesystem import LocalFileSystem

    prefix, local = f"gs://{BUCKET}", LocalFileSystem(None)

    def to_local(path: str) -> str:
        if not path.startswith(prefix):
            raise AssertionError(f"{path}: only gs://{BUCKET} exists in this check")
        return str(root) + path[len(prefix) :]

    def to_gs(path: str) -> str:
        return prefix + path[len(str(root)) :]

    def match(self, patterns, limits=None):
        results = local.match([to_local(p) for p in patterns], limits)
        return [
            MatchResult(
                to_gs(r.pattern),
                [FileMetadata(to_gs(m.path), m.size_in_bytes, m.last_updated_in_seconds) for m in r.metadata_list],
            )
            for r in results
        ]

    replaced = {
        "match": match,
        "open": lambda self, path, *args, **kwargs: local.open(to_local(path), *args, **kwargs),
        "exists": lambda self, path: local.exists(to_local(path)),
        "size": lambda self, path: local.size(to_local(path)),
    }
    saved = {name: getattr(gcsfilesystem.GCSFileSystem, name) for name in replaced}
    try:
        for name, function in replaced.items():
            setattr(gcsfilesystem.GCSFileSystem, name, function)
        yield f"gs://{BUCKET}"
    finally:
        for name, function in saved.items():
            setattr(gcsfilesystem.GCSFileSystem, name, function)


def upload(root: Path, local: Path, name: str) -> str:
    """Copies a local file or folder into the bucket folder; returns its gs:// path."""
    target = root / name
    if local.is_dir():
        shutil.copytree(local, target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
    return f"gs://{BUCKET}/{name}"


def check_job(description: dict[str, Any], job_file: Path, *, steps: list[str], local_roots: list[str], gs_paths):
    """Asserts the dry run's job description is what Dataflow needs; returns the written JSON."""
    from pipelines import cloud

    written = json.loads(job_file.read_text())
    assert written["steps"] == description["steps"]
    missing = sorted(set(steps) - set(description["steps"]))
    assert not missing, f"steps missing from the job: {missing} (has {description['steps']})"
    assert description["containers"] == [IMAGE], description["containers"]
    environment = written["job"]["environment"]
    assert "use_runner_v2" in environment["experiments"]
    pool = environment["workerPools"][0]
    assert pool["machineType"] == "n2-standard-4"
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 8
    assert IMAGE in json.dumps(pool["sdkHarnessContainerImages"])
    assert environment["tempStoragePrefix"].startswith("storage.googleapis.com/") or environment[
        "tempStoragePrefix"
    ].startswith("gs://")
    # No path of this machine may reach the workers: not in the options, the environment or any pickled step.
    assert cloud.local_paths_in(description, local_roots) == []
    # ...and the gs:// paths the user gave do (the steps carry them to the workers).
    for path in gs_paths:
        assert path.encode("utf-8") in description["_step_bytes"], f"{path} not in the job's steps"
    return written
