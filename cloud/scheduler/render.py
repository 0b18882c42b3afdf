"""Fill cloud/scheduler/score_launch.json (the daily score run's flexTemplates:launch body) and check it.

    python -m cloud.scheduler.render --project my-proj --region us-central1 --bucket my-bucket --version 0.1.0 \\
        --model_dir gs://my-bucket/models/2026-01-15 --output /tmp/score_launch.json

Cloud Scheduler posts a fixed body to LAUNCH_URL every day, so nothing in it can be dated at launch time: the
output prefix carries the literal `{date}`, which the score pipeline replaces with its UTC run date when it starts.
The body is parsed into the Dataflow client library's LaunchFlexTemplateRequest (camelCase JSON names, as the REST
API takes them): an unknown field or a value of the wrong type fails here rather than in the daily launch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from cloud.vertex.render import SpecError, check_placeholder_values, fill, leftovers, parse_as

BODY = Path(__file__).with_name("score_launch.json")
# Dataflow's REST endpoint for launching a Flex Template (projects.locations.flexTemplates.launch, v1b3).
LAUNCH_URL = "https://dataflow.googleapis.com/v1b3/projects/${PROJECT}/locations/${REGION}/flexTemplates:launch"
DATE_PLACEHOLDER = "{date}"  # replaced by each pipeline with its UTC run date (YYYY-MM-DD)
TEMPLATE = "score"


def launch_url(project: str, region: str) -> str:
    return fill(LAUNCH_URL, {"PROJECT": project, "REGION": region})


def check_rules(body: dict) -> None:
    """Rules of this project that the request type cannot express."""
    launch = body["launchParameter"]
    spec_path = launch.get("containerSpecGcsPath", "")
    if not (spec_path.startswith("gs://") and spec_path.endswith(f"/templates/{TEMPLATE}.json")):
        raise SpecError(f"containerSpecGcsPath {spec_path!r} is not gs://BUCKET/templates/{TEMPLATE}.json")
    parameters = launch.get("parameters", {})
    for name in ("input", "model_dir", "output_dir"):
        if not str(parameters.get(name, "")).startswith("gs://"):
            raise SpecError(f"parameters.{name} must be a gs:// URL (Dataflow workers have no local files)")
    if DATE_PLACEHOLDER not in parameters["output_dir"]:
        # without it every daily run would write to (and be refused by) the same output directory
        raise SpecError(f"parameters.output_dir must contain {DATE_PLACEHOLDER} so each daily run gets its own prefix")


def validate(body: dict):
    """The dataflow_v1beta3 LaunchFlexTemplateRequest that `body` parses into; SpecError if not, or if it breaks a rule."""
    left = leftovers(body)
    if left:
        raise SpecError(f"placeholders not filled: {', '.join(sorted(set(left)))}")
    from google.cloud.dataflow_v1beta3.types import LaunchFlexTemplateRequest

    request = parse_as(LaunchFlexTemplateRequest, body, "LaunchFlexTemplateRequest")
    check_rules(body)
    return request


def placeholder_values(
    project: str, region: str, bucket: str, version: str, model_dir: str, service_account: str | None = None
) -> dict[str, str]:
    return {
        "PROJECT": project,
        "REGION": region,
        "BUCKET": bucket,
        "VERSION": version,
        "MODEL_DIR": model_dir,
        "SERVICE_ACCOUNT": service_account or f"lstm-pipeline@{project}.iam.gserviceaccount.com",
    }


def render(values: Mapping[str, str], body: dict | None = None) -> dict:
    """The body (score_launch.json unless given) filled with `values` and validated."""
    check_placeholder_values(values)
    template = body if body is not None else json.loads(BODY.read_text())
    try:
        filled = fill(template, values)
    except KeyError as error:
        raise SpecError(f"no value for placeholder ${{{error.args[0]}}}") from None
    validate(filled)
    return filled


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cloud.scheduler.render",
        description="Write the daily score run's flexTemplates:launch body, checked against the Dataflow API types.",
    )
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True, help="Dataflow region, e.g. us-central1")
    parser.add_argument("--bucket", required=True, help="Bucket name, without gs://")
    parser.add_argument("--version", required=True, help="Image tag of the Dataflow worker image")
    parser.add_argument("--model_dir", required=True, help="gs:// directory of the blessed model to score with")
    parser.add_argument(
        "--service_account", default=None, help="Default: lstm-pipeline@PROJECT.iam.gserviceaccount.com"
    )
    parser.add_argument("--print_url", action="store_true", help="Print the launch URL instead of the body")
    parser.add_argument("--output", default="-", help="File to write (default: stdout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = placeholder_values(
        args.project, args.region, args.bucket, args.version, args.model_dir, args.service_account
    )
    if args.print_url:
        text = launch_url(args.project, args.region) + "\n"
    else:
        try:
            text = json.dumps(render(values), indent=2) + "\n"
        except SpecError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
