"""Fill cloud/vertex/train_job.json's ${PLACEHOLDERS} and check the result against Vertex AI's own CustomJob type.

    python -m cloud.vertex.render --project my-proj --region us-central1 --bucket my-bucket \\
        --run_date 2026-01-15 --version 0.1.0 --tensorboard_id 1234567890 --output /tmp/train_job.json
    # the CustomJob REST body; --job_spec_only writes the CustomJobSpec that `gcloud ai custom-jobs create --config` reads

The spec is checked with protobuf's JSON parser on the client library's message (not with a schema of our own),
so an unknown field, a misspelt enum (acceleratorType) or a value of the wrong type fails here, offline, instead of
in a 400 from the API. A few project rules the API cannot know are checked on top (see `check_rules`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPEC = Path(__file__).with_name("train_job.json")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
GCS_FUSE_ROOT = "/gcs/"  # Vertex AI custom jobs mount gs://BUCKET/x at /gcs/BUCKET/x (Cloud Storage FUSE)


class SpecError(ValueError):
    """A rendered spec that the API would reject, or that breaks a rule of this project (the message says which)."""


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """`value` (parsed JSON) with ${NAME} replaced in every string; keys are left alone. KeyError names a missing one."""
    if isinstance(value, str):
        return string.Template(value).substitute(values)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def leftovers(value: Any) -> list[str]:
    """Placeholders still present anywhere in `value` (parsed JSON), e.g. ["${BUCKET}"]."""
    if isinstance(value, str):
        return [m.group(0) for m in PLACEHOLDER.finditer(value)]
    if isinstance(value, list):
        return [p for v in value for p in leftovers(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in leftovers(v)]
    return []


def parse_as(message_class, body: dict, what: str):
    """`body` parsed into the proto-plus `message_class`; SpecError on unknown fields or wrong types."""
    from google.protobuf import json_format

    message = message_class.pb(message_class())
    try:
        # ignore_unknown_fields=False is the default; spelt out because it is the point of the check
        json_format.ParseDict(body, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise SpecError(f"{what}: {error}") from None
    return message_class.wrap(message)


def check_placeholder_values(values: Mapping[str, str]) -> None:
    """SpecError for values that would render into a wrong but parseable spec (the API takes any string)."""
    bucket = values.get("BUCKET", "")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", bucket):
        raise SpecError(f"BUCKET {bucket!r}: give the bucket name alone (no gs://, no slashes)")
    if "RUN_DATE" in values:
        try:
            datetime.date.fromisoformat(values["RUN_DATE"])
        except ValueError:
            raise SpecError(f"RUN_DATE {values['RUN_DATE']!r} is not YYYY-MM-DD") from None
    if "REGION" in values and not re.fullmatch(r"[a-z]+-[a-z]+\d+", values["REGION"]):
        raise SpecError(f"REGION {values['REGION']!r} is not a region name such as us-central1")


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def check_rules(job: dict) -> None:
    """Rules of this project that the CustomJob type cannot express."""
    spec = job["jobSpec"]
    pools = spec.get("workerPoolSpecs", [])
    if len(pools) != 1 or int(pools[0].get("replicaCount", 0)) != 1:
        raise SpecError("jobSpec: training runs on one worker pool of one replica (the trainer is not distributed)")
    pool = pools[0]
    container = pool["containerSpec"]
    args = list(container.get("command", [])) + list(container.get("args", []))
    model_dir = _flag_value(args, "--model_dir")
    dataset_dir = _flag_value(args, "--dataset_dir")
    for flag, path in (("--dataset_dir", dataset_dir), ("--model_dir", model_dir)):
        # the trainer writes with pathlib/shutil, so it needs the FUSE mount, not gs:// URLs
        if not path or not path.startswith(GCS_FUSE_ROOT):
            raise SpecError(f"{flag} {path!r}: the trainer needs a Cloud Storage FUSE path ({GCS_FUSE_ROOT}BUCKET/...)")
    base = spec.get("baseOutputDirectory", {}).get("outputUriPrefix", "")
    # Vertex AI TensorBoard reads AIP_TENSORBOARD_LOG_DIR = BASE/logs; the trainer writes MODEL_DIR/logs, so the two
    # line up only when the base output directory is the model directory.
    if base.rstrip("/") != "gs://" + model_dir[len(GCS_FUSE_ROOT) :].rstrip("/"):
        raise SpecError(f"baseOutputDirectory {base!r} must be --model_dir {model_dir!r} as a gs:// URL")
    accelerated = pool.get("machineSpec", {}).get("acceleratorCount", 0)
    if accelerated and not container.get("imageUri", "").endswith("-gpu"):
        raise SpecError("a GPU machine needs the CUDA image (tag ending in -gpu)")


def validate(job: dict):
    """The aiplatform_v1 CustomJob that `job` (rendered JSON) parses into; SpecError if it does not or breaks a rule."""
    left = leftovers(job)
    if left:
        raise SpecError(f"placeholders not filled: {', '.join(sorted(set(left)))}")
    from google.cloud.aiplatform_v1.types import CustomJob

    message = parse_as(CustomJob, job, "CustomJob")
    check_rules(job)
    return message


def placeholder_values(
    project: str,
    region: str,
    bucket: str,
    run_date: str,
    version: str,
    tensorboard_id: str,
    service_account: str | None = None,
) -> dict[str, str]:
    return {
        "PROJECT": project,
        "REGION": region,
        "BUCKET": bucket,
        "RUN_DATE": run_date,
        "VERSION": version,
        "TENSORBOARD_ID": tensorboard_id,
        "SERVICE_ACCOUNT": service_account or f"lstm-pipeline@{project}.iam.gserviceaccount.com",
    }


def render(values: Mapping[str, str], spec: dict | None = None) -> dict:
    """The spec (train_job.json unless given) filled with `values` and validated."""
    check_placeholder_values(values)
    template = spec if spec is not None else json.loads(SPEC.read_text())
    try:
        job = fill(template, values)
    except KeyError as error:
        raise SpecError(f"no value for placeholder ${{{error.args[0]}}}") from None
    validate(job)
    return job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cloud.vertex.render",
        description="Write the Vertex AI training CustomJob with its placeholders filled, checked against the API types.",
    )
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True, help="e.g. us-central1 (must offer the job's GPU)")
    parser.add_argument("--bucket", required=True, help="Bucket name, without gs://")
    parser.add_argument("--run_date", default=datetime.date.today().isoformat(), help="Dataset/model date prefix")
    parser.add_argument("--version", required=True, help="Image tag; the GPU image is VERSION-gpu")
    parser.add_argument("--tensorboard_id", required=True, help="Vertex AI TensorBoard instance id")
    parser.add_argument(
        "--service_account", default=None, help="Default: lstm-pipeline@PROJECT.iam.gserviceaccount.com"
    )
    parser.add_argument(
        "--job_spec_only",
        action="store_true",
        help="Write only jobSpec (CustomJobSpec), the form `gcloud ai custom-jobs create --config` reads",
    )
    parser.add_argument("--output", default="-", help="File to write (default: stdout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = placeholder_values(
        args.project, args.region, args.bucket, args.run_date, args.version, args.tensorboard_id, args.service_account
    )
    try:
        job = render(values)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(job["jobSpec"] if args.job_spec_only else job, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
