"""Daily LSTM text run on Google Cloud: ingest (Dataflow) -> train (Vertex AI, GPU) -> bless gate -> score (Dataflow).

Every run works under prefixes dated with its logical date ({{ ds }}), so runs never share a directory:

    gs://BUCKET/datasets/DS   ingest's dataset (TFRecords, vocab, manifest.json)
    gs://BUCKET/models/DS     the trained model, blessing.json and TensorBoard logs (logs/)
    gs://BUCKET/scored/DS     the scores (Parquet), written only if the model is blessed

Deploy: copy this file into the Composer environment's dags/ folder
(`gcloud composer environments storage dags import --environment ENV --location REGION --source cloud/dags/lstm_daily.py`).
Configuration: the DAG params below, overridable per run ("Trigger DAG w/ config"); their defaults come from the
environment's variables (LSTM_GCP_PROJECT, LSTM_GCP_REGION, LSTM_BUCKET, LSTM_IMAGE_VERSION, LSTM_TENSORBOARD_ID,
LSTM_SERVICE_ACCOUNT), read once at parse time. Parsing touches nothing else: no Variable, connection or network
lookup runs at the top level, because the scheduler parses this file every few seconds.

Checked offline by cloud/airflow_check.py (run with .venv-airflow/bin/python), written for Airflow 3 with
apache-airflow-providers-google 22.x; the imports fall back to Airflow 2's paths (Composer 2), which are not checked.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.providers.google.cloud.operators.vertex_ai.custom_job import CreateCustomJobOperator

try:  # Airflow 3
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2 (Composer 2)
    from airflow import DAG
    from airflow.models.param import Param
    from airflow.operators.python import ShortCircuitOperator

LOGGER = logging.getLogger(__name__)
DAG_ID = "lstm_daily"
GCP_CONN_ID = "google_cloud_default"
BLESSING_FILE = "blessing.json"  # schemas.names.MODEL_BLESSING_FILE; the project is not installed on Composer

# Dated prefixes ({{ ds }} is the run's logical date, YYYY-MM-DD). The trainer writes with pathlib/shutil, so on
# Vertex AI it gets the same objects through the Cloud Storage FUSE mount (gs://B/x is /gcs/B/x in the job).
DATASET_URI = "gs://{{ params.bucket }}/datasets/{{ ds }}"
MODEL_URI = "gs://{{ params.bucket }}/models/{{ ds }}"
SCORED_URI = "gs://{{ params.bucket }}/scored/{{ ds }}"
DATASET_FUSE = "/gcs/{{ params.bucket }}/datasets/{{ ds }}"
MODEL_FUSE = "/gcs/{{ params.bucket }}/models/{{ ds }}"
IMAGE = "{{ params.region }}-docker.pkg.dev/{{ params.project }}/lstm/lstm-text-pipeline:{{ params.image_version }}"
TEMPLATES = "gs://{{ params.bucket }}/templates"
# Default worker account: the one cloud/vertex and cloud/scheduler use too.
SERVICE_ACCOUNT = "{{ params.service_account or 'lstm-pipeline@' ~ params.project ~ '.iam.gserviceaccount.com' }}"

# Flex Template parameters: the pipelines' flag names without dashes (tests/test_cloud_specs.py checks them
# against pipelines.ingest / pipelines.score's parsers, so keep these dict literals).
INGEST_PARAMETERS = {
    "input": "gs://{{ params.bucket }}/{{ params.raw_input }}",
    "input_format": "{{ params.input_format }}",
    "task": "{{ params.task }}",
    "output_dir": DATASET_URI,
}
SCORE_PARAMETERS = {
    "input": "gs://{{ params.bucket }}/{{ params.score_input }}",
    "input_format": "{{ params.score_input_format }}",
    "model_dir": MODEL_URI,
    "output_dir": SCORED_URI,
}
# The training command; --overwrite because the dated model directory belongs to this run alone, and a retry (or a
# cleared task) must replace its own partial output rather than fail on it.
TRAIN_COMMAND = ["python", "-m", "lstm_model.train"]
TRAIN_ARGS = ["--dataset_dir", DATASET_FUSE, "--model_dir", MODEL_FUSE, "--overwrite"]


def flex_template_body(template: str, parameters: dict[str, str]) -> dict:
    """A flexTemplates:launch request body (REST, camelCase), as DataflowStartFlexTemplateOperator sends it."""
    return {
        "launchParameter": {
            # the operator appends a unique suffix (append_job_name), so reruns of a date do not collide
            "jobName": f"lstm-{template}-{{{{ ds_nodash }}}}",
            "containerSpecGcsPath": f"{TEMPLATES}/{template}.json",
            "parameters": parameters,
            "environment": {
                "serviceAccountEmail": SERVICE_ACCOUNT,
                "tempLocation": "gs://{{ params.bucket }}/tmp",
                "stagingLocation": "gs://{{ params.bucket }}/staging",
                "sdkContainerImage": IMAGE,
                "machineType": "n1-standard-4",
                "maxWorkers": 4,
                "additionalUserLabels": {"pipeline": "lstm-text", "step": template},
            },
        }
    }


def training_job() -> dict:
    """The Vertex AI CustomJob (snake_case, as the client library takes a dict); the same job as
    cloud/vertex/train_job.json, which cloud/airflow_check.py compares it with after rendering."""
    return {
        "display_name": "lstm-train-{{ ds }}",
        "labels": {"pipeline": "lstm-text", "step": "train"},
        "job_spec": {
            "worker_pool_specs": [
                {
                    # T4: the cheapest and most widely available Vertex AI GPU; the LSTMs here are small
                    # (cuDNN kernels, well under its 16 GB), see cloud/vertex/README.md
                    "machine_spec": {
                        "machine_type": "n1-standard-8",
                        "accelerator_type": "NVIDIA_TESLA_T4",
                        "accelerator_count": 1,
                    },
                    "replica_count": 1,
                    "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
                    "container_spec": {
                        "image_uri": IMAGE + "-gpu",
                        "command": TRAIN_COMMAND,
                        "args": TRAIN_ARGS,
                        "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}],
                    },
                }
            ],
            "scheduling": {"timeout": "14400s", "restart_job_on_worker_restart": False},
            "service_account": SERVICE_ACCOUNT,
            # Vertex AI TensorBoard reads BASE/logs (AIP_TENSORBOARD_LOG_DIR): with BASE = the model directory
            # that is where the trainer writes its event files (MODEL_DIR/logs)
            "base_output_directory": {"output_uri_prefix": MODEL_URI},
            "tensorboard": "projects/{{ params.project }}/locations/{{ params.region }}/tensorboards/"
            "{{ params.tensorboard_id }}",
        },
    }


def model_blessed(model_dir: str, gcp_conn_id: str = GCP_CONN_ID) -> bool:
    """True if MODEL_DIR/blessing.json says the model is blessed; False stops the run before scoring.

    A missing or unreadable blessing.json raises instead: training succeeded, so its absence is a fault to see,
    not a verdict. model_dir may be gs://... (read with GCSHook) or a local directory (offline checks).
    """
    path = f"{model_dir.rstrip('/')}/{BLESSING_FILE}"
    if path.startswith("gs://"):
        from airflow.providers.google.cloud.hooks.gcs import GCSHook  # imported here: only a run needs it

        bucket, _, name = path[len("gs://") :].partition("/")
        text = GCSHook(gcp_conn_id=gcp_conn_id).download(bucket_name=bucket, object_name=name).decode("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    blessing = json.loads(text)
    blessed = blessing.get("blessed") is True
    LOGGER.info("%s: blessed=%s (%s)", path, blessed, blessing.get("reason", "no reason given"))
    return blessed


with DAG(
    dag_id=DAG_ID,
    description="ingest (Dataflow) -> train (Vertex AI GPU) -> bless gate -> score (Dataflow), dated by logical date",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # runs share the bucket's templates and quotas; one at a time keeps GPU and Dataflow use predictable
    max_active_runs=1,
    default_args={"retries": 0},
    params={
        "project": Param(os.environ.get("LSTM_GCP_PROJECT", "my-project"), type="string"),
        "region": Param(os.environ.get("LSTM_GCP_REGION", "us-central1"), type="string"),
        "bucket": Param(os.environ.get("LSTM_BUCKET", "my-bucket"), type="string", description="name, no gs://"),
        "image_version": Param(os.environ.get("LSTM_IMAGE_VERSION", "0.1.0"), type="string"),
        "tensorboard_id": Param(os.environ.get("LSTM_TENSORBOARD_ID", "0"), type="string"),
        "service_account": Param(os.environ.get("LSTM_SERVICE_ACCOUNT", ""), type="string"),
        "raw_input": Param("raw/*.jsonl", type="string", description="ingest input, relative to the bucket"),
        "input_format": Param("jsonl", type="string"),
        "task": Param("classification", enum=["classification", "language_model", "translation"]),
        "score_input": Param("incoming/*.jsonl", type="string", description="score input, relative to the bucket"),
        "score_input_format": Param("jsonl", type="string"),
    },
    tags=["lstm", "dataflow", "vertex-ai"],
) as dag:
    # Dataflow jobs write into dated directories that the pipelines refuse to overwrite, so a blind retry would only
    # fail again: clear the task after fixing the cause instead (retries stay 0 there).
    ingest = DataflowStartFlexTemplateOperator(
        task_id="ingest",
        project_id="{{ params.project }}",
        location="{{ params.region }}",
        body=flex_template_body("ingest", INGEST_PARAMETERS),
        gcp_conn_id=GCP_CONN_ID,
        wait_until_finished=True,  # training must see the whole dataset
    )
    train = CreateCustomJobOperator(
        task_id="train",
        project_id="{{ params.project }}",
        region="{{ params.region }}",
        custom_job=training_job(),
        gcp_conn_id=GCP_CONN_ID,
        # GPU capacity errors (stockouts) are transient; --overwrite makes a rerun safe
        retries=2,
        retry_delay=timedelta(minutes=15),
    )
    bless_gate = ShortCircuitOperator(
        task_id="bless_gate",
        python_callable=model_blessed,
        op_kwargs={"model_dir": MODEL_URI, "gcp_conn_id": GCP_CONN_ID},
    )
    score = DataflowStartFlexTemplateOperator(
        task_id="score",
        project_id="{{ params.project }}",
        location="{{ params.region }}",
        body=flex_template_body("score", SCORE_PARAMETERS),
        gcp_conn_id=GCP_CONN_ID,
        wait_until_finished=True,
    )

    ingest >> train >> bless_gate >> score
