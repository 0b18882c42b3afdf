"""What changes when a pipeline runs on Google Cloud Dataflow instead of the local runner.

- Dated outputs: ``{date}`` in ``--output_dir`` becomes the run's UTC date (YYYY-MM-DD), so a
  scheduled launch with a fixed request body (Cloud Scheduler) writes each day to its own prefix.
- Worker paths: Dataflow workers cannot see the launching machine's disk, so with DataflowRunner
  every path a worker reads or writes must be gs:// (one line naming the flag otherwise).
- Dry runs: ``--runner DataflowRunner --dry_run True`` builds exactly the job the service would
  get and submits nothing; our own storage checks and the output directory are skipped (nothing is
  read beyond what building the graph needs, nothing is written). ``--dataflow_job_file PATH``
  writes the job description: environment (worker pools, container image, experiments, service
  options), pipeline options, the labelled steps and the SDK container of each environment.
- The manifest on the workers: a Flex Template launcher exits once the job is submitted, so code
  after ``pipeline.run()`` never runs there. On a remote runner the job writes its own manifest as
  its last step (`WriteManifest`, after the run summary); the launching process, when it waits,
  reads it back. The local runner's multi-process mode does the same: its workers already hold
  Great Expectations for the row checks, so the launching process need not import it (about
  7 CPU-seconds at the end of every run). ``--manifest_in_pipeline yes|no`` forces either way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
    WorkerOptions,
)

from schemas.cli import UserError

LOGGER = logging.getLogger("lstm_pipeline")
DATE_PLACEHOLDER = "{date}"
REMOTE_RUNNERS = ("dataflowrunner", "dataflow")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every pipeline takes for running on Dataflow (Beam's own flags pass through untouched)."""
    group = parser.add_argument_group("running on Dataflow (see README 'Running on Google Cloud')")
    group.add_argument(
        "--manifest_in_pipeline",
        choices=("auto", "yes", "no"),
        default="auto",
        help="Write manifest.json as the job's last step (auto: yes with DataflowRunner, whose Flex Template "
        "launcher does not wait for the job, and with the local runner's multi_processing mode, whose workers "
        "have the validation libraries loaded; otherwise the launching process writes it).",
    )


def expand_date(path: str | None, today: datetime.date | None = None) -> str | None:
    """`path` with every {date} replaced by today's UTC date (YYYY-MM-DD); None stays None."""
    if path is None or DATE_PLACEHOLDER not in path:
        return path
    today = today or datetime.datetime.now(datetime.UTC).date()
    return path.replace(DATE_PLACEHOLDER, today.isoformat())


def _options(beam_args: list[str]) -> PipelineOptions:
    return PipelineOptions(beam_args)


def is_remote(beam_args: list[str]) -> bool:
    """True when the runner is Dataflow (workers elsewhere: local paths mean nothing to them)."""
    runner = _options(beam_args).view_as(StandardOptions).runner or ""
    return str(runner).lower() in REMOTE_RUNNERS


def is_dry_run(beam_args: list[str]) -> bool:
    """True for ``--dry_run True`` with a remote runner: build the job, submit nothing, write nothing."""
    return is_remote(beam_args) and bool(_options(beam_args).view_as(TestOptions).dry_run)


def check_worker_paths(beam_args: list[str], paths: dict[str, str | None]) -> None:
    """UserError naming the first local path in {flag: path} when the workers are remote."""
    if not is_remote(beam_args):
        return
    for flag, path in paths.items():
        if path and not str(path).startswith("gs://"):
            raise UserError(
                f"{flag} {path}: Dataflow workers cannot read this machine's files; use a gs:// path "
                "(gsutil cp -r it to a bucket first)"
            )


def check_paths(beam_args: list[str], paths: dict[str, str | None]) -> bool:
    """The path checks every pipeline makes before it builds anything; returns whether this is a dry run.

    Remote workers need gs:// paths; gs:// paths must answer (one line in seconds, not minutes of
    retries), except in a dry run, which touches no storage of ours. `paths`: {flag: path}; the
    output directory's flag is "--output_dir" (it must be writable).
    """
    from pipelines import gcs

    check_worker_paths(beam_args, paths)
    dry_run = is_dry_run(beam_args)
    if not dry_run:
        gcs.check_reachable(paths, writable=["--output_dir"])
    return dry_run


def runs_elsewhere(beam_args: list[str]) -> bool:
    """True when no pipeline step runs in this process: a remote runner, or the local runner's worker processes."""
    if is_remote(beam_args):
        return True
    return _options(beam_args).view_as(DirectOptions).direct_running_mode == "multi_processing"


def manifest_in_pipeline(args: argparse.Namespace, beam_args: list[str]) -> bool:
    if args.manifest_in_pipeline == "auto":
        return runs_elsewhere(beam_args)
    return args.manifest_in_pipeline == "yes"


class WriteManifest(beam.PTransform):
    """The run summary's single element (written) -> the manifest's counts, after `write` wrote manifest.json.

    `write(seconds)` builds and writes the manifest from OUT/_run_summary.json, as the launching
    process does on the local runner, and removes the run-in-progress marker (the directory is complete).
    `started_at`: the launch time (seconds since the epoch), so the manifest's run seconds cover the job.
    """

    def __init__(self, write: Callable[[float], dict[str, Any]], output_dir: str, started_at: float):
        super().__init__()
        self.write = write
        self.output_dir = output_dir
        self.started_at = started_at

    def expand(self, summary_written):
        return summary_written | "WriteManifest" >> beam.Map(
            _write_manifest_once, self.write, self.output_dir, self.started_at
        )


def _write_manifest_once(_, write, output_dir: str, started_at: float) -> dict[str, Any]:
    import time

    from pipelines import common

    manifest = write(time.time() - started_at)
    common.finish_output_dir(output_dir)
    return manifest["counts"]


def run_pipeline(
    name: str,
    args: argparse.Namespace,
    beam_args: list[str],
    options: PipelineOptions,
    build: Callable[[beam.Pipeline], Any],
    write_manifest: Callable[[float], dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Runs `build`'s pipeline and has its manifest written, where the runner allows.

    `build(pipeline)` adds the steps and returns the run summary's written-file PCollection;
    `write_manifest(seconds)` builds and writes manifest.json from the summary (returning it, with the
    suites' reports under "_reports"). Returns (manifest, reports) after a run; (job description, None)
    after a dry run; (manifest read back, None) when the job wrote its own manifest.
    """
    import time

    from pipelines import common
    from schemas import names

    started, started_at = time.monotonic(), time.time()
    common.memoize_dofn_specs()
    common.memoize_option_views()
    in_pipeline = manifest_in_pipeline(args, beam_args)
    with beam.Pipeline(options=options) as pipeline:
        summary = build(pipeline)
        if in_pipeline:
            summary | WriteManifest(write_manifest, args.output_dir, started_at)
    if is_dry_run(beam_args):
        return finish_dry_run(pipeline, name), None
    if in_pipeline:
        return common.read_json(common.join(args.output_dir, names.MANIFEST_FILE)), None
    manifest = write_manifest(time.monotonic() - started)
    return manifest, manifest.pop("_reports")


def finish(output_dir: str, manifest: dict[str, Any], reports: list[dict[str, Any]] | None) -> None:
    """`runs.finish` after a run whose manifest this process wrote; `finish_from_manifest` otherwise."""
    from pipelines import runs

    if reports is None:
        finish_from_manifest(output_dir, manifest)
    else:
        runs.finish(output_dir, manifest["counts"], reports)


def finish_from_manifest(output_dir: str, manifest: dict[str, Any]) -> None:
    """The end of a run whose manifest the job wrote: counts must balance, critical expectations pass.

    The same one-line errors as `runs.finish`, read from the manifest's counts and validation block.
    """
    from pipelines import validation

    if not manifest["counts"]["balanced"]:
        raise UserError("records in != records out + quarantined; see manifest.json counts")
    checks = manifest["validation"]
    for warning in checks["warnings"]:
        LOGGER.warning("validation warning: %s", warning)
    if checks["critical_failures"]:
        raise validation.ValidationFailed(
            f"validation failed: {checks['critical_failures'][0]}; see {output_dir.rstrip('/')}/{checks['report']}"
        )


# ------------------------------------------------------------------------------------------------ dry runs
def job_description(pipeline: beam.Pipeline) -> dict[str, Any]:
    """The Dataflow job a dry run built: {"job", "environment", "pipeline_options", "steps", "containers"}.

    "environment" is what the service would receive (worker pools, machine type, autoscaling, experiments,
    service options, SDK container images); Beam fills it only while submitting, so it is built here from
    the same options without staging anything.
    """
    from apache_beam.runners.dataflow.internal import apiclient

    runner = pipeline.runner
    job = pipeline.result.job
    options = pipeline.options
    staging = options.view_as(GoogleCloudOptions).staging_location or ""
    environment = apiclient.Environment(
        packages=[],
        options=options,
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,  # Beam's own constant; no public name
        proto_pipeline_staged_url=f"{staging.rstrip('/')}/pipeline.pb",
        proto_pipeline=runner.proto_pipeline,
    )
    job.proto.environment = environment.proto
    components = runner.proto_pipeline.components
    containers = []
    for env in components.environments.values():
        from apache_beam.portability.api import beam_runner_api_pb2

        payload = beam_runner_api_pb2.DockerPayload.FromString(env.payload)
        containers.append(payload.container_image)
    return {
        "job": json.loads(job.json()),
        "pipeline_options": options.get_all_options(drop_default=True, retain_unknown_options=True),
        # Top-level steps are the labels the pipeline modules give; the rest are their insides.
        "steps": sorted(
            t.unique_name for t in components.transforms.values() if t.unique_name and "/" not in t.unique_name
        ),
        "transforms": len(components.transforms),
        "containers": sorted(set(containers)),
        "_step_bytes": _step_bytes(runner.proto_pipeline),
    }


def _step_bytes(proto) -> bytes:
    """Every transform's payload as the workers will read it: Beam stores pickled functions (and the
    values of Create) base64-encoded and compressed (bz2 or zlib), so they are unpacked here to be searchable."""
    import base64
    import binascii
    import bz2
    import zlib

    from apache_beam.portability.api import beam_runner_api_pb2

    chunks = [proto.SerializeToString()]
    for transform in proto.components.transforms.values():
        payloads = [transform.spec.payload]
        if transform.spec.urn == "beam:transform:pardo:v1":
            payloads.append(beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload)
        for payload in payloads:
            for decompress in (bz2.decompress, zlib.decompress):
                try:
                    chunks.append(decompress(base64.b64decode(payload, validate=True)))
                except (binascii.Error, zlib.error, OSError, ValueError):
                    pass
    return b"\n".join(chunks)


def finish_dry_run(pipeline: beam.Pipeline, name: str) -> dict[str, Any]:
    """Writes the job description to --dataflow_job_file (when given), prints one line, returns it."""
    description = job_description(pipeline)
    path = pipeline.options.view_as(DebugOptions).dataflow_job_file
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in description.items() if not k.startswith("_")}, handle, indent=2, default=str)
    workers = pipeline.options.view_as(WorkerOptions)
    print(
        f"{name}: dry run, nothing submitted: Dataflow job with {len(description['steps'])} steps "
        f"({description['transforms']} transforms), container {', '.join(description['containers']) or 'default'}, "
        f"machine {workers.machine_type or 'default'}, max workers {workers.max_num_workers or 'default'}"
        + (f"; job description -> {path}" if path else ""),
        flush=True,
    )
    return description


def local_paths_in(description: dict[str, Any], local_roots: list[str]) -> list[str]:
    """The local roots (this machine's directories) that appear anywhere in the job: in its options,
    environment or the pickled steps. A worker would look for them on its own disk and fail."""
    text = json.dumps({k: v for k, v in description.items() if not k.startswith("_")}, default=str)
    found = []
    for root in local_roots:
        if root in text or root.encode("utf-8") in description["_step_bytes"]:
            found.append(root)
    return found
