"""The Google Cloud specs (cloud/vertex, cloud/scheduler, cloud/dags) against the APIs' types and the project's CLIs.

Offline: the specs are parsed into the Google client libraries' own message types (an unknown field or a wrong
type fails, as the API would), and every flag they hand to the project's programs must exist in that program's
parser. The DAG itself needs Airflow, which lives in .venv-airflow: cloud/airflow_check.py checks it there; here
its literal parameter names and training flags are read from the source.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.scheduler import render as scheduler
from cloud.vertex import render as vertex

pytestmark = pytest.mark.cloud  # make cloud-check (CI runs it after make test)

REPO = Path(__file__).resolve().parent.parent
DAG_FILE = REPO / "cloud" / "dags" / "lstm_daily.py"
VERTEX_VALUES = vertex.placeholder_values(
    project="my-proj",
    region="us-central1",
    bucket="my-bucket",
    run_date="2026-01-15",
    version="0.1.0",
    tensorboard_id="1234567890",
)
SCHEDULER_VALUES = scheduler.placeholder_values(
    project="my-proj",
    region="us-central1",
    bucket="my-bucket",
    version="0.1.0",
    model_dir="gs://my-bucket/models/2026-01-15",
)


def template(path: Path) -> dict:
    return json.loads(path.read_text())


def flags_of(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def dag_literal(name: str) -> ast.expr:
    """The expression assigned to module-level `name` in the DAG file (which cannot be imported without Airflow)."""
    for node in ast.parse(DAG_FILE.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    raise AssertionError(f"{DAG_FILE.name} has no module-level {name}")


def train_parsers() -> dict:
    """Every task's training parser: lstm_model.train hands the flags to the dataset's task, whichever it is."""
    from lstm_model import tasks

    return {name: tasks.get(name).build_parser() for name in tasks.available()}


# -- Vertex AI training job ------------------------------------------------------------------------------------


def test_vertex_job_renders_and_parses_as_a_custom_job():
    from google.cloud.aiplatform_v1.types import AcceleratorType, CustomJob

    job = vertex.render(VERTEX_VALUES)
    message = vertex.validate(job)
    assert isinstance(message, CustomJob)
    pool = message.job_spec.worker_pool_specs[0]
    assert pool.machine_spec.accelerator_type == AcceleratorType.NVIDIA_TESLA_T4
    assert pool.machine_spec.accelerator_count == 1
    assert pool.container_spec.image_uri == "us-central1-docker.pkg.dev/my-proj/lstm/lstm-text-pipeline:0.1.0-gpu"
    assert list(pool.container_spec.command) == ["python", "-m", "lstm_model.train"]
    args = list(pool.container_spec.args)
    assert args[args.index("--dataset_dir") + 1] == "/gcs/my-bucket/datasets/2026-01-15"
    assert args[args.index("--model_dir") + 1] == "/gcs/my-bucket/models/2026-01-15"
    # TensorBoard reads BASE/logs; the trainer writes MODEL_DIR/logs: the same objects
    assert message.job_spec.base_output_directory.output_uri_prefix == "gs://my-bucket/models/2026-01-15"
    assert message.job_spec.tensorboard == "projects/my-proj/locations/us-central1/tensorboards/1234567890"
    assert message.job_spec.service_account == "lstm-pipeline@my-proj.iam.gserviceaccount.com"
    assert message.job_spec.scheduling.timeout.total_seconds() == 4 * 3600


def test_vertex_placeholders_are_exactly_the_rendered_values():
    raw = template(vertex.SPEC)
    assert {p[2:-1] for p in vertex.leftovers(raw)} == set(VERTEX_VALUES)
    assert vertex.leftovers(vertex.render(VERTEX_VALUES)) == []
    assert "$" not in json.dumps(vertex.render(VERTEX_VALUES))


def test_vertex_job_spec_only_is_a_custom_job_spec(tmp_path):
    from google.cloud.aiplatform_v1.types import CustomJobSpec

    out = tmp_path / "spec.json"
    argv = ["--project", "my-proj", "--region", "us-central1", "--bucket", "my-bucket", "--run_date", "2026-01-15"]
    assert (
        vertex.main([*argv, "--version", "0.1.0", "--tensorboard_id", "1", "--job_spec_only", "--output", str(out)])
        == 0
    )
    spec = json.loads(out.read_text())
    vertex.parse_as(CustomJobSpec, spec, "CustomJobSpec")  # what `gcloud ai custom-jobs create --config` reads
    assert "displayName" not in spec and spec["workerPoolSpecs"]


def _pool(job: dict) -> dict:
    return job["jobSpec"]["workerPoolSpecs"][0]


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda j: _pool(j)["machineSpec"].update(gpuType="NVIDIA_TESLA_T4"), "gpuType"),  # unknown field
        (lambda j: j["jobSpec"].update(baseOutputDir={"outputUriPrefix": "gs://x"}), "baseOutputDir"),
        (lambda j: _pool(j).update(replicaCount="one"), "replicaCount"),  # wrong type
        (lambda j: _pool(j)["machineSpec"].update(acceleratorCount=[1]), "acceleratorCount"),
        (lambda j: _pool(j)["containerSpec"].update(args="--model_dir /gcs/x"), "args"),
        (lambda j: _pool(j)["machineSpec"].update(acceleratorType="NVIDIA_T4"), "NVIDIA_T4"),  # no such enum value
        (lambda j: j["jobSpec"]["scheduling"].update(timeout="4 hours"), "timeout"),
    ],
)
def test_vertex_job_with_a_broken_field_fails(breaks, message):
    job = copy.deepcopy(vertex.render(VERTEX_VALUES))
    breaks(job)
    with pytest.raises(vertex.SpecError, match=message):
        vertex.validate(job)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda j: _pool(j)["containerSpec"]["args"].__setitem__(3, "gs://my-bucket/models/2026-01-15"), "FUSE"),
        (lambda j: j["jobSpec"]["baseOutputDirectory"].update(outputUriPrefix="gs://my-bucket/out"), "baseOutput"),
        (lambda j: _pool(j)["containerSpec"].update(imageUri="r-docker.pkg.dev/p/lstm/lstm-text-pipeline:1"), "-gpu"),
        (lambda j: _pool(j).update(replicaCount=2), "one replica"),
    ],
)
def test_vertex_job_breaking_a_project_rule_fails(breaks, message):
    job = copy.deepcopy(vertex.render(VERTEX_VALUES))
    breaks(job)
    with pytest.raises(vertex.SpecError, match=message):
        vertex.validate(job)


def test_vertex_render_refuses_missing_or_malformed_values():
    values = dict(VERTEX_VALUES)
    del values["TENSORBOARD_ID"]
    with pytest.raises(vertex.SpecError, match="TENSORBOARD_ID"):
        vertex.render(values)
    with pytest.raises(vertex.SpecError, match="BUCKET"):
        vertex.render({**VERTEX_VALUES, "BUCKET": "gs://my-bucket"})
    with pytest.raises(vertex.SpecError, match="RUN_DATE"):
        vertex.render({**VERTEX_VALUES, "RUN_DATE": "15/01/2026"})
    with pytest.raises(vertex.SpecError, match="placeholders not filled"):
        vertex.validate(template(vertex.SPEC))


def test_training_flags_exist_in_every_tasks_train_parser():
    pool = _pool(template(vertex.SPEC))["containerSpec"]
    assert pool["command"] == ["python", "-m", "lstm_model.train"]
    dag_args = [e.value for e in dag_literal("TRAIN_ARGS").elts if isinstance(e, ast.Constant)]
    dag_command = [e.value for e in dag_literal("TRAIN_COMMAND").elts]
    assert dag_command == pool["command"]
    used = {a for a in pool["args"] + dag_args if a.startswith("--")}
    assert {"--dataset_dir", "--model_dir"} <= used
    for task, parser in train_parsers().items():
        assert used <= flags_of(parser), f"{task}: {sorted(used - flags_of(parser))} unknown to lstm_model.train"
        # the rendered argv parses as the trainer would parse it on Vertex AI
        args = parser.parse_args(_pool(vertex.render(VERTEX_VALUES))["containerSpec"]["args"])
        assert args.model_dir == "/gcs/my-bucket/models/2026-01-15" and args.overwrite


# -- Cloud Scheduler: daily score launch -----------------------------------------------------------------------


def test_scheduler_body_renders_and_parses_as_a_launch_request():
    from google.cloud.dataflow_v1beta3.types import LaunchFlexTemplateRequest

    body = scheduler.render(SCHEDULER_VALUES)
    request = scheduler.validate(body)
    assert isinstance(request, LaunchFlexTemplateRequest)
    launch = request.launch_parameter
    assert launch.container_spec_gcs_path == "gs://my-bucket/templates/score.json"
    assert launch.parameters["output_dir"] == "gs://my-bucket/scored/{date}"  # dated by the pipeline at launch
    assert launch.parameters["model_dir"] == "gs://my-bucket/models/2026-01-15"
    assert launch.environment.sdk_container_image == "us-central1-docker.pkg.dev/my-proj/lstm/lstm-text-pipeline:0.1.0"
    assert launch.environment.service_account_email == "lstm-pipeline@my-proj.iam.gserviceaccount.com"
    assert launch.environment.max_workers == 4
    assert scheduler.launch_url("my-proj", "us-central1") == (
        "https://dataflow.googleapis.com/v1b3/projects/my-proj/locations/us-central1/flexTemplates:launch"
    )


def test_scheduler_placeholders_are_exactly_the_rendered_values():
    raw = template(scheduler.BODY)
    assert {p[2:-1] for p in vertex.leftovers(raw)} == set(SCHEDULER_VALUES)
    assert "$" not in json.dumps(scheduler.render(SCHEDULER_VALUES))


def _launch(body: dict) -> dict:
    return body["launchParameter"]


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda b: _launch(b)["environment"].update(maxWorkerz=4), "maxWorkerz"),  # unknown field
        (lambda b: _launch(b).update(containerSpecGcsPathh="gs://x/templates/score.json"), "containerSpecGcsPathh"),
        (lambda b: _launch(b)["environment"].update(maxWorkers="four"), "maxWorkers"),  # wrong type
        (lambda b: _launch(b).update(parameters=["input", "gs://x"]), "parameters"),
        (lambda b: _launch(b)["environment"].update(ipConfiguration="PUBLIC"), "ipConfiguration"),  # bad enum
        (lambda b: _launch(b)["parameters"].update(output_dir="gs://my-bucket/scored/latest"), "{date}"),  # rule
        (lambda b: _launch(b)["parameters"].update(model_dir="models/x"), "model_dir"),
    ],
)
def test_scheduler_body_with_a_broken_field_fails(breaks, message):
    body = copy.deepcopy(scheduler.render(SCHEDULER_VALUES))
    breaks(body)
    with pytest.raises(vertex.SpecError, match=message):
        scheduler.validate(body)


def test_score_parameters_are_flags_of_the_score_pipeline():
    from pipelines import ingest, score

    score_flags = flags_of(score.build_parser())
    launch = _launch(scheduler.render(SCHEDULER_VALUES))
    # a Flex Template hands each parameter to the program as --name=value
    argv = [f"--{name}={value}" for name, value in launch["parameters"].items()]
    assert {a.split("=")[0] for a in argv} <= score_flags
    args = score.build_parser().parse_args(argv)
    assert args.output_dir == "gs://my-bucket/scored/{date}"

    for name, parser in (("SCORE_PARAMETERS", score.build_parser()), ("INGEST_PARAMETERS", ingest.build_parser())):
        keys = {k.value for k in dag_literal(name).keys}
        assert {f"--{k}" for k in keys} <= flags_of(parser), f"DAG {name}: {keys} vs {parser.prog}"


def test_create_job_script_dry_run(tmp_path):
    script = REPO / "cloud" / "scheduler" / "create_job.sh"
    assert scheduler.LAUNCH_URL in script.read_text()  # the script builds the same URL in shell
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {
        **os.environ,
        "PROJECT": "my-proj",
        "REGION": "us-central1",
        "BUCKET": "my-bucket",
        "VERSION": "0.1.0",
        "MODEL_DIR": "gs://my-bucket/models/2026-01-15",
        "PYTHON": sys.executable,
        "BODY_FILE": str(tmp_path / "body.json"),
    }
    env.pop("APPLY", None)  # a dry run: gcloud is printed, never run
    done = subprocess.run(["bash", str(script)], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert "gcloud scheduler jobs create http lstm-score-daily" in done.stdout
    assert scheduler.launch_url("my-proj", "us-central1") in done.stdout
    scheduler.validate(json.loads((tmp_path / "body.json").read_text()))


def test_launch_parameters_are_declared_by_the_flex_templates():
    """Dataflow rejects a launch whose parameters the template's metadata does not declare."""
    declared = {}
    for name in ("ingest", "score"):
        metadata = REPO / "cloud" / "templates" / name / "metadata.json"
        if not metadata.is_file():
            pytest.skip(f"{metadata.relative_to(REPO)} is not there yet")
        declared[name] = {p["name"] for p in json.loads(metadata.read_text()).get("parameters", [])}
    scheduled = set(_launch(template(scheduler.BODY))["parameters"])
    assert scheduled <= declared["score"], sorted(scheduled - declared["score"])
    for name, literal in (("ingest", "INGEST_PARAMETERS"), ("score", "SCORE_PARAMETERS")):
        keys = {k.value for k in dag_literal(literal).keys}
        assert keys <= declared[name], f"DAG {literal}: {sorted(keys - declared[name])} not in the {name} template"
