"""Flex Templates and the image, checked offline: metadata from the pipelines' own flags, the launcher
program as Dataflow runs it (a file, --name=value parameters), and the Dockerfile against the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.cloud.dataflow_v1beta3 import types
from google.protobuf import json_format

from pipelines import flex_template

pytestmark = pytest.mark.cloud  # make cloud-check (CI runs it after make test)

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "cloud" / "templates"
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def _flags(pipeline: str) -> set[str]:
    """Every long flag of the pipeline, as `--help` lists it."""
    parser = flex_template._parser(pipeline)
    return {o[2:] for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


@pytest.mark.parametrize("pipeline", flex_template.PIPELINES)
def test_flex_metadata_is_the_pipelines_flags(pipeline):
    path = TEMPLATES / pipeline / "metadata.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == flex_template.metadata(pipeline), f"{path} is stale: run `make templates-metadata`"
    # The service's own schema for it (unknown or mistyped fields fail to parse).
    json_format.ParseDict(document, types.TemplateMetadata.pb(types.TemplateMetadata()))
    names = [p["name"] for p in document["parameters"]]
    assert len(names) == len(set(names))
    assert set(names) == _flags(pipeline)
    for parameter in document["parameters"]:
        assert parameter["helpText"] and "%(" not in parameter["helpText"]
        for regex in parameter.get("regexes", []):
            re.compile(regex)
            if "defaultValue" in parameter and parameter["defaultValue"] not in ("", "None"):
                assert re.fullmatch(regex, parameter["defaultValue"]), (parameter["name"], regex)
    required = {p["name"] for p in document["parameters"] if not p["isOptional"]}
    assert {"input", "output_dir"} <= required


def test_flex_metadata_schema_rejects_a_mistake():
    document = flex_template.metadata("score")
    document["parameters"][0]["isOptionl"] = True
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(document, types.TemplateMetadata.pb(types.TemplateMetadata()))


def test_flex_switch_parameters_become_bare_flags():
    argv = ["--input=gs://b/x", "--overwrite=true", "--allow_unblessed=false", "--runner=DataflowRunner"]
    assert flex_template.argv_for("score", argv) == ["--input=gs://b/x", "--overwrite", "--runner=DataflowRunner"]
    with pytest.raises(SystemExit, match="switch"):
        flex_template.argv_for("score", ["--overwrite=maybe"])


def test_flex_launcher_runs_the_pipeline_as_dataflow_starts_it(tmp_path):
    """The launcher program run as the image runs it (a file; LSTM_PIPELINE; --name=value), on the local runner."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:4000], encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, flex_template.ENV_PIPELINE: "ingest", "PYTHONPATH": str(REPO)}
    argv = [f"--input={corpus}", "--input_format=text", "--task=language_model", "--split_by=position",
            f"--output_dir={out}", "--overwrite=true", "--joint_vocabulary=false"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "flex_template.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "language_model" and manifest["counts"]["balanced"]
    bad = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "flex_template.py"), *argv],
        env={**env, flex_template.ENV_PIPELINE: "nope"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "LSTM_PIPELINE" in bad.stderr


def test_dockerfile_matches_the_repository():
    """What can be checked without a Docker daemon: pins, copied paths, targets, entry points."""
    text = (REPO / "cloud" / "Dockerfile").read_text(encoding="utf-8")
    constraints = (REPO / "constraints.txt").read_text(encoding="utf-8")
    beam = re.search(r"^ARG BEAM_VERSION=(\S+)$", text, re.M).group(1)
    assert f"apache-beam=={beam}\n" in constraints, "the SDK image must match the pinned apache-beam"
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", text, re.M).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"python{python.replace('.', '')}-template-launcher-base" in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"COPY {path}: not in the repository"
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in ("pipelines", "lstm_model", "schemas", "textprep", "setup.py", "constraints.txt"):
        assert needed not in ignored
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.M))
    assert set(flex_template.PIPELINES) | {"base", "worker"} <= targets
    for pipeline in flex_template.PIPELINES:
        assert re.search(rf"^FROM base AS {pipeline}\nENV LSTM_PIPELINE={pipeline}$", text, re.M)
    launcher = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/lstm/(\S+)", text).group(1)
    assert (REPO / launcher).is_file()
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    assert "pip check" in text
