"""Errors a user can act on: one line, exit code 2, no traceback. Plus drift warnings at scoring."""

import json
import shutil

import pytest

from lstm_model import train
from pipelines import common, ingest, score


def fails_with(capsys, run, argv, fragment):
    code = common.main_with_user_errors(run, argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and fragment in errors[0], err
    assert "Traceback" not in err


def test_wrong_input_path(tmp_path, capsys):
    fails_with(
        capsys,
        ingest.run,
        ["--input", str(tmp_path / "nope"), "--input_format", "csv", "--output_dir", str(tmp_path / "o")],
        "matches no file",
    )


def test_glob_matching_nothing(tmp_path, capsys):
    fails_with(
        capsys,
        ingest.run,
        ["--input", str(tmp_path / "*.jsonl"), "--input_format", "jsonl", "--output_dir", str(tmp_path / "o")],
        "the pattern matches no file",
    )


def test_output_dir_holding_another_run(mini_dataset, mini_dir, capsys):
    dataset_dir, _ = mini_dataset
    fails_with(
        capsys, ingest.run, ["--input", str(mini_dir), "--output_dir", str(dataset_dir)], "already holds a previous run"
    )


@pytest.fixture
def model_copy(mini_model, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(mini_model, target)
    return target


def score_argv(mini_dir, model_dir, out):
    return ["--input", str(mini_dir), "--model_dir", str(model_dir), "--output_dir", str(out), "--allow_unblessed"]


def test_unreadable_model_directory(model_copy, mini_dir, tmp_path, capsys):
    (model_copy / "model_info.json").write_text("{not json")
    fails_with(capsys, score.run, score_argv(mini_dir, model_copy, tmp_path / "o"), "cannot read")


def test_not_a_model_directory(mini_dir, tmp_path, capsys):
    (tmp_path / "empty_model").mkdir()
    fails_with(
        capsys,
        score.run,
        score_argv(mini_dir, tmp_path / "empty_model", tmp_path / "o"),
        "not a trained model directory",
    )


def test_model_directory_missing_its_vocabulary(model_copy, mini_dir, tmp_path, capsys):
    (model_copy / "vocab.tsv").unlink()
    fails_with(capsys, score.run, score_argv(mini_dir, model_copy, tmp_path / "o"), "missing its vocabulary")


def test_vocabulary_not_matching_the_embedding(model_copy, mini_dir, tmp_path, capsys):
    lines = (model_copy / "vocab.tsv").read_text().splitlines()
    (model_copy / "vocab.tsv").write_text("\n".join(lines[:-10]) + "\n")
    fails_with(capsys, score.run, score_argv(mini_dir, model_copy, tmp_path / "o"), "does not belong to this model")


def test_training_into_a_used_model_dir(mini_dataset, mini_model, capsys):
    dataset_dir, _ = mini_dataset
    fails_with(capsys, train.run, ["--dataset_dir", str(dataset_dir), "--model_dir", str(mini_model)], "is not empty")


def test_bad_config_key(mini_dataset, tmp_path, capsys):
    dataset_dir, _ = mini_dataset
    (tmp_path / "c.json").write_text(json.dumps({"lstm_unitz": 4}))
    fails_with(
        capsys,
        train.run,
        ["--dataset_dir", str(dataset_dir), "--model_dir", str(tmp_path / "m"), "--config", str(tmp_path / "c.json")],
        "unknown config keys",
    )


def test_scoring_reports_drift_with_numbers(mini_model, tmp_path):
    """Texts unlike IMDB reviews: short, full of unknown words. A warning, not a failure."""
    corpus = tmp_path / "odd.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"zxqv{i} blorf{i} qwop{i}"}) + "\n" for i in range(40))
    )
    manifest = score.run(
        [
            "--input",
            str(corpus),
            "--input_format",
            "jsonl",
            "--model_dir",
            str(mini_model),
            "--output_dir",
            str(tmp_path / "o"),
            "--allow_unblessed",
        ]
    )
    drifted = {check["measure"]: check for check in manifest["drift"]["checks"] if check["drift"]}
    assert "token length p50" in drifted and drifted["token length p50"]["scoring"] == 3
    assert any(measure.startswith("OOV rate") for measure in drifted)
    assert len(manifest["drift"]["warnings"]) == len(drifted)
    assert "Drift against training data" in (tmp_path / "o" / "validation.html").read_text()
    assert manifest["counts"]["scored"] == 40


def test_scoring_quarantines_bad_rows_and_balances(mini_model, tmp_path):
    corpus = tmp_path / "mixed.jsonl"
    rows = [
        json.dumps({"id": "ok", "text": "A great film"}),
        json.dumps({"id": "markup", "text": "<br /><br />"}),
        json.dumps({"id": "num", "text": 5}),
        "oops",
    ]
    corpus.write_text("\n".join(rows) + "\n")
    manifest = score.run(
        [
            "--input",
            str(corpus),
            "--input_format",
            "jsonl",
            "--model_dir",
            str(mini_model),
            "--output_dir",
            str(tmp_path / "o"),
            "--allow_unblessed",
            "--max_quarantine_rate",
            "1",
        ]
    )
    assert manifest["counts"] == {"records_in": 4, "scored": 1, "quarantined": 3, "balanced": True}
    assert manifest["quarantine"]["by_reason"] == {"empty_after_cleaning": 1, "malformed_row": 1, "non_string_text": 1}
