"""Offline check of the Composer DAG (cloud/dags/lstm_daily.py) in its own Airflow environment.

    .venv-airflow/bin/python cloud/airflow_check.py      # one summary line; exit status 1 on any failure

Airflow and the Google provider cannot share .venv (their pins clash with the project's), so this runs with
.venv-airflow's python (cloud/requirements-airflow.txt). It parses the DAG with Airflow's own DagBag while every
socket connection is refused (Airflow parses DAG files constantly: the top level must not touch the network), then
checks the task graph and operator types, renders every templated field for one date as Airflow would, and checks
the rendered requests against the Google client libraries' types:

* the training CustomJob must be the same job as cloud/vertex/train_job.json rendered with the same values;
* both Flex Template launch bodies must parse as LaunchFlexTemplateRequest, with {{ ds }}-dated prefixes, and the
  score body's runtime environment must equal the Cloud Scheduler body's (cloud/scheduler/score_launch.json);
* the bless gate must let a run through for a blessed blessing.json and skip the score task for an unblessed one:
  two real runs with dag.test() on a throwaway SQLite database, the Google Cloud tasks marked successful instead of
  run, the gate reading a local model directory.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_FOLDER = ROOT / "cloud" / "dags"
DAG_ID = "lstm_daily"
ORDER = ["ingest", "train", "bless_gate", "score"]
RUN_DATE = "2026-01-15"
# The DAG reads its param defaults from these at parse time; setting them also checks that mechanism.
ENVIRONMENT = {
    "LSTM_GCP_PROJECT": "check-project",
    "LSTM_GCP_REGION": "europe-west4",
    "LSTM_BUCKET": "check-bucket",
    "LSTM_IMAGE_VERSION": "9.9.9",
    "LSTM_TENSORBOARD_ID": "4242",
}


class NoNetwork:
    """Refuse every connection and name lookup while parsing (a DAG file that tries one fails to import)."""

    def __enter__(self):
        self.saved = socket.socket.connect, socket.create_connection, socket.getaddrinfo

        def refuse(*args, **kwargs):
            raise OSError("network access while parsing the DAG file")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        return self

    def __exit__(self, *exc):
        socket.socket.connect, socket.create_connection, socket.getaddrinfo = self.saved
        return False


def parse_dag():
    from airflow.models import DagBag

    # Airflow 2's DagBag loads the example DAGs unless told not to; Airflow 3's has no such argument (loads none)
    kwargs = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
    with NoNetwork():
        bag = DagBag(dag_folder=str(DAG_FOLDER), **kwargs)
    assert not bag.import_errors, f"import errors: {bag.import_errors}"
    assert DAG_ID in bag.dags, f"no DAG {DAG_ID!r} in {DAG_FOLDER} (found {sorted(bag.dags)})"
    return bag.dags[DAG_ID]


def check_graph(dag) -> None:
    from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
    from airflow.providers.google.cloud.operators.vertex_ai.custom_job import CreateCustomJobOperator
    from airflow.providers.standard.operators.python import ShortCircuitOperator

    assert sorted(dag.task_ids) == sorted(ORDER), f"task ids {sorted(dag.task_ids)} != {sorted(ORDER)}"
    for before, after in zip(ORDER, ORDER[1:], strict=False):
        assert dag.get_task(before).downstream_task_ids == {after}, f"{before} must lead to {after} alone"
        assert dag.get_task(after).upstream_task_ids == {before}, f"{after} must wait for {before} alone"
    assert not dag.get_task(ORDER[0]).upstream_task_ids and not dag.get_task(ORDER[-1]).downstream_task_ids
    kinds = {
        "ingest": DataflowStartFlexTemplateOperator,
        "train": CreateCustomJobOperator,
        "bless_gate": ShortCircuitOperator,
        "score": DataflowStartFlexTemplateOperator,
    }
    for task_id, kind in kinds.items():
        assert isinstance(dag.get_task(task_id), kind), f"{task_id} is not a {kind.__name__}"
    assert dag.schedule == "@daily", f"schedule {dag.schedule!r} is not @daily"
    assert dag.max_active_runs == 1
    for task_id in ("ingest", "score"):
        assert dag.get_task(task_id).wait_until_finished is True, f"{task_id} must wait for its Dataflow job"


def flatten(value, path: str = "") -> dict[str, str]:
    """{"a.b[0].c": "value"} for every leaf of parsed JSON: differences then name their paths."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{path}.{key}".lstrip(".")).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{path}[{i}]").items()}
    return {path: json.dumps(value)}


def render(dag, task_id: str, field: str, params: dict):
    """The templated `field` of `task_id` as Airflow renders it for a run on RUN_DATE."""
    task = dag.get_task(task_id)
    assert field in task.template_fields, f"{task_id}.{field} is not templated"
    context = {"ds": RUN_DATE, "ds_nodash": RUN_DATE.replace("-", ""), "params": params}
    return task.render_template(getattr(task, field), context, dag.get_template_env())


def check_dated(dag) -> None:
    """The raw (unrendered) fields carry {{ ds }}: each run writes under its own date."""
    raw = {
        "ingest output_dir": dag.get_task("ingest").body["launchParameter"]["parameters"]["output_dir"],
        "score output_dir": dag.get_task("score").body["launchParameter"]["parameters"]["output_dir"],
        "score model_dir": dag.get_task("score").body["launchParameter"]["parameters"]["model_dir"],
        "train base output": dag.get_task("train").custom_job["job_spec"]["base_output_directory"]["output_uri_prefix"],
        "bless_gate model_dir": dag.get_task("bless_gate").op_kwargs["model_dir"],
    }
    for what, value in raw.items():
        assert "{{ ds }}" in value, f"{what} {value!r} is not dated with {{{{ ds }}}}"


def check_requests(dag, params: dict) -> None:
    from google.cloud.aiplatform_v1.types import CustomJob
    from google.cloud.dataflow_v1beta3.types import LaunchFlexTemplateRequest
    from google.protobuf import json_format

    from cloud.scheduler import render as scheduler
    from cloud.vertex import render as vertex

    bucket = params["bucket"]
    expected = {
        "ingest": {"output_dir": f"gs://{bucket}/datasets/{RUN_DATE}"},
        "score": {"model_dir": f"gs://{bucket}/models/{RUN_DATE}", "output_dir": f"gs://{bucket}/scored/{RUN_DATE}"},
    }
    bodies = {}
    for task_id, parameters in expected.items():
        body = render(dag, task_id, "body", params)
        vertex.parse_as(LaunchFlexTemplateRequest, body, f"{task_id} body")
        launch = body["launchParameter"]
        assert launch["containerSpecGcsPath"] == f"gs://{bucket}/templates/{task_id}.json", launch
        for name, value in parameters.items():
            assert launch["parameters"][name] == value, f"{task_id} {name} {launch['parameters'][name]!r} != {value!r}"
        assert not vertex.leftovers(body) and "{{" not in json.dumps(body), f"{task_id} body not fully rendered"
        bodies[task_id] = body

    # The DAG's score run and the Scheduler's run the same workers the same way.
    scheduled = scheduler.render(
        scheduler.placeholder_values(
            params["project"], params["region"], bucket, params["image_version"], f"gs://{bucket}/models/x"
        )
    )
    assert bodies["score"]["launchParameter"]["environment"] == scheduled["launchParameter"]["environment"], (
        "score environment differs from cloud/scheduler/score_launch.json's"
    )

    # The client library builds the request from the rendered dict exactly like this (proto-plus, snake_case).
    job = CustomJob(render(dag, "train", "custom_job", params))
    spec = vertex.render(
        vertex.placeholder_values(
            params["project"], params["region"], bucket, RUN_DATE, params["image_version"], params["tensorboard_id"]
        )
    )
    ours, theirs = (
        json_format.MessageToDict(CustomJob.pb(job)),
        json_format.MessageToDict(CustomJob.pb(vertex.validate(spec))),
    )
    differences = sorted(set(flatten(ours).items()) ^ set(flatten(theirs).items()))
    assert ours == theirs, f"train custom_job differs from cloud/vertex/train_job.json at {differences}"
    vertex.check_rules(json_format.MessageToDict(CustomJob.pb(job)))

    gate_model_dir = render(dag, "bless_gate", "op_kwargs", params)["model_dir"]
    assert gate_model_dir == f"gs://{bucket}/models/{RUN_DATE}", f"bless_gate reads {gate_model_dir!r}"
    assert gate_model_dir == bodies["score"]["launchParameter"]["parameters"]["model_dir"], "gate and score differ"


def check_gate(dag) -> None:
    """The gate's callable on a local model directory: blessed, unblessed, and no blessing.json at all."""
    gate = dag.get_task("bless_gate")
    with tempfile.TemporaryDirectory() as model_dir:
        blessing = Path(model_dir, "blessing.json")
        for blessed in (True, False):
            blessing.write_text(json.dumps({"blessed": blessed, "reason": "airflow_check"}))
            assert gate.python_callable(model_dir=model_dir) is blessed, f"gate callable on blessed={blessed}"
        blessing.unlink()
        try:
            gate.python_callable(model_dir=model_dir)
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("a missing blessing.json must fail the gate, not pass or skip silently")


def check_runs(dag) -> None:
    """Two real runs of the DAG with `dag.test()` (Airflow's in-process Task Runner on a throwaway SQLite database):
    the Google Cloud tasks are marked successful instead of run, the gate runs for real on a local blessing.json.
    A blessed model lets the run reach score; an unblessed one leaves score skipped."""
    import pendulum
    from airflow.utils import db

    db.initdb()
    gate = dag.get_task("bless_gate")
    with tempfile.TemporaryDirectory() as model_dir:
        for day, blessed in ((15, True), (16, False)):
            Path(model_dir, "blessing.json").write_text(json.dumps({"blessed": blessed, "reason": "airflow_check"}))
            # the rendered gs:// path would need credentials and network; the callable reads local paths too
            gate.op_kwargs = {"model_dir": model_dir}
            run = dag.test(
                logical_date=pendulum.datetime(2026, 1, day, tz="UTC"), mark_success_pattern="ingest|train|score"
            )
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            expected = {"ingest": "success", "train": "success", "bless_gate": "success"}
            expected["score"] = "success" if blessed else "skipped"
            assert states == expected, f"blessed={blessed}: task states {states}, expected {expected}"


def main() -> int:
    home = tempfile.TemporaryDirectory(prefix="airflow-check-")
    # Before airflow is imported: its config, logs and (unused) database go to a throwaway home.
    os.environ.update(ENVIRONMENT)
    os.environ["AIRFLOW_HOME"] = home.name
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # keep the summary line visible
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAG_FOLDER)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home.name}/airflow.db"  # for dag.test() only
    sys.path.insert(0, str(ROOT))  # for cloud.vertex / cloud.scheduler, however this file is started
    done = []
    try:
        from importlib.metadata import version

        versions = f"Airflow {version('apache-airflow')}, google provider {version('apache-airflow-providers-google')}"
        dag = parse_dag()
        done.append("parsed offline")
        params = dag.params.dump()
        assert params["bucket"] == ENVIRONMENT["LSTM_BUCKET"], "param defaults do not come from LSTM_* variables"
        for name, check in (
            ("graph " + " -> ".join(ORDER), check_graph),
            ("{{ ds }}-dated", check_dated),
            ("requests match the client types and cloud/vertex, cloud/scheduler", lambda d: check_requests(d, params)),
            ("gate callable", check_gate),
            ("dag.test runs: score skipped when unblessed, run when blessed", check_runs),
        ):
            check(dag)
            done.append(name)
    except Exception as error:  # noqa: BLE001 -- any failure is reported as the one summary line
        traceback.print_exc()
        message = " ".join(str(error).split())  # one line, whatever the exception held
        print(f"airflow_check: FAILED after [{'; '.join(done)}]: {type(error).__name__}: {message[:1000]}")
        return 1
    finally:
        home.cleanup()
    print(f"airflow_check: OK {DAG_ID} ({versions}): {'; '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
