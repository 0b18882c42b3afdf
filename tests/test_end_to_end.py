"""IMDB slice end to end: ingest -> train a tiny model -> score -> read the Parquet back."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from lstm_model.export import load_exported
from pipelines import ingest, score, tasks
from pipelines.inference import SignatureModelHandler
from schemas import arrow, names
from schemas.cli import UserError
from schemas.tfrecord import feature_spec
from tests import runner_buffers


def read_split(dataset_dir: Path, split: str) -> dict[str, list[int]]:
    files = sorted(str(p) for p in (dataset_dir / split).glob("*.tfrecord.gz"))
    out = {}
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.io.parse_single_example(serialized, feature_spec())
        out[example[names.FEATURE_ID].numpy().decode()] = example[names.FEATURE_TOKEN_IDS].numpy().tolist()
    return out


def test_ingest_counts_balance_and_manifest_is_complete(mini_dataset):
    dataset_dir, manifest = mini_dataset
    counts = manifest["counts"]
    assert counts["input_files"] == 1496
    assert counts["records_in"] == counts["records_out"] + counts["quarantined"] == 1496
    splits = manifest["splits"]
    assert splits["test"]["records"] == 498 and splits["test"]["labels"] == {"neg": 249, "pos": 249}
    assert splits["unsup"]["records"] == 500
    assert splits["train"]["records"] + splits["validation"]["records"] == 498
    assert 0 < splits["validation"]["records"] < 100
    assert 0 < splits["test"]["oov_rate"] < 0.2 and splits["train"]["token_length"]["p50"] > 50
    vocabulary = (dataset_dir / names.VOCAB_FILE).read_text().splitlines()
    assert len(vocabulary) == manifest["vocabulary"]["size"] <= 8000
    assert vocabulary[:2] == ["[PAD]\t0", "[UNK]\t0"]
    for relative, described in manifest["outputs"].items():
        assert (dataset_dir / relative).stat().st_size == described["bytes"]
    stored = {split: len(read_split(dataset_dir, split)) for split in ("train", "validation", "test", "unsup")}
    assert stored == {split: splits[split]["records"] for split in stored}


def test_records_never_wait_in_the_local_runners_memory(mini_dataset, mini_dir):
    """Records reach the stages after the vocabulary and the dedupe decisions through spill files.

    Beam's local runner holds whatever crosses a stage boundary in its own memory; if records did
    (as they once did through a Flatten of the reader's outputs, 1.4x the corpus here), its memory
    would grow with the corpus. What may cross: file lists, dedupe keys, the vocabulary (8000 tokens).
    """
    _ = mini_dataset  # measured by the fixture's run
    corpus_bytes = sum(path.stat().st_size for path in mini_dir.rglob("*") if path.is_file())
    assert runner_buffers.PEAKS["mini_ingest"] < 0.5 * corpus_bytes


def test_exported_model_computes_the_ids_ingest_wrote(mini_dataset, mini_model, mini_dir):
    """One preprocessing definition: raw review -> model's ids == ingest's TFRecord ids."""
    dataset_dir, _ = mini_dataset
    written = {**read_split(dataset_dir, "test"), **read_split(dataset_dir, "train")}
    ids = sorted(written)[::4]  # ~240 real reviews, both splits and labels
    raw = [
        (mini_dir / f"{record_id.rsplit('/', 1)[0]}").glob(f"{record_id.rsplit('/', 1)[1]}_*.txt") for record_id in ids
    ]
    texts = [next(iter(paths)).read_text(encoding="utf-8") for paths in raw]
    assert any("<br />" in text for text in texts)  # the raw markup really goes through the model
    outputs = load_exported(str(mini_model / names.MODEL_EXPORT_DIR)).signatures[names.PREPROCESS_SIGNATURE](
        text=tf.constant(texts)
    )
    token_ids = outputs["token_ids"].numpy()
    for row, record_id in enumerate(ids):
        n = int(outputs["num_tokens"][row])
        assert token_ids[row, :n].tolist() == written[record_id], record_id


def test_serving_signature_matches_keras_model(mini_model):
    import keras

    texts = ["An absolute masterpiece.<br /><br />Loved every minute!", "Dull, boring &amp; far too long."]
    serving = load_exported(str(mini_model / names.MODEL_EXPORT_DIR)).signatures
    ids = serving[names.PREPROCESS_SIGNATURE](text=tf.constant(texts))["token_ids"].numpy().astype("int32")
    keras_model = keras.saving.load_model(mini_model / "model.keras")
    expected = keras_model(ids).numpy().reshape(-1)
    got = serving[names.SERVING_SIGNATURE](text=tf.constant(texts))["probability"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_model_directory_holds_config_vocab_and_provenance(mini_dataset, mini_model):
    dataset_dir, manifest = mini_dataset
    info = json.loads((mini_model / names.MODEL_INFO_FILE).read_text())
    assert info["dataset_fingerprint"] == manifest["dataset_fingerprint"]
    assert info["model_version"].startswith("lstm-")
    assert (mini_model / names.VOCAB_FILE).read_bytes() == (dataset_dir / names.VOCAB_FILE).read_bytes()
    config = json.loads((mini_model / names.MODEL_CONFIG_FILE).read_text())
    assert config["lstm_units"] == 8 and config["epochs"] == 1
    metrics = json.loads((mini_model / names.MODEL_METRICS_FILE).read_text())
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert 0.0 <= metrics["test"][key] <= 1.0
    assert metrics["test"]["examples"] == manifest["splits"]["test"]["records"]
    assert list((mini_model / "logs").rglob("events.out.tfevents.*"))
    assert (mini_model / "checkpoints" / "best.weights.h5").exists()


def test_training_writes_report_baseline_and_blessing(mini_model):
    metrics = json.loads((mini_model / names.MODEL_METRICS_FILE).read_text())
    report_dir = mini_model / names.MODEL_REPORT_DIR
    for name in (
        "index.html",
        "training_curves.png",
        "roc.png",
        "pr.png",
        "confusion_matrix.png",
        "reliability.png",
        "accuracy_by_length.png",
    ):
        assert (report_dir / name).stat().st_size > 0, name
    test, baseline = metrics["test"], metrics["baseline"]
    assert 0.0 <= test["ece"] <= 1.0 and len(test["calibration"]["bins"]) == 10
    assert sum(bucket["count"] for bucket in test["by_length"]) == test["examples"]
    assert baseline["test"]["examples"] == test["examples"]  # same test split
    assert metrics["deltas"]["test"]["accuracy"] == pytest.approx(test["accuracy"] - baseline["test"]["accuracy"])
    assert metrics["confident_errors"] and metrics["report"] == "report/index.html"
    # The 1-epoch tiny model does not beat bag-of-words: not blessed, and the reason says why.
    blessing = json.loads((mini_model / names.MODEL_BLESSING_FILE).read_text())
    info = json.loads((mini_model / names.MODEL_INFO_FILE).read_text())
    assert blessing["blessed"] is False and "does not beat baseline" in blessing["reason"]
    assert blessing["model_version"] == info["model_version"] and metrics["blessing"]["blessed"] is False


def test_report_cli_rewrites_report_and_blessing_of_a_trained_model(mini_model, mini_dataset, tmp_path):
    """`python -m lstm_model.report` on a copy: same test numbers, blessing redecided with the new margin."""
    import shutil

    from lstm_model import report

    model_dir = tmp_path / "model"
    shutil.copytree(mini_model, model_dir)
    shutil.rmtree(model_dir / names.MODEL_REPORT_DIR)
    before = json.loads((model_dir / names.MODEL_METRICS_FILE).read_text())
    # A margin of -1 accuracy: any model "beats" the baseline, so the unblessed tiny model becomes blessed.
    metrics = report.run(["--model_dir", str(model_dir), "--bless_margin", "-1"])
    assert (model_dir / names.MODEL_REPORT_DIR / "index.html").stat().st_size > 0
    assert metrics["test"]["accuracy"] == pytest.approx(before["test"]["accuracy"])
    assert metrics["baseline"]["test"]["accuracy"] == pytest.approx(before["baseline"]["test"]["accuracy"])
    assert json.loads((model_dir / names.MODEL_BLESSING_FILE).read_text())["blessed"] is True

    # A task without report_existing is a one-line error, not a traceback.
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    (lm_dir / names.MODEL_METRICS_FILE).write_text("{}")
    info = {"task": names.TASK_LANGUAGE_MODEL, "dataset_dir": str(mini_dataset[0])}
    (lm_dir / names.MODEL_INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(UserError, match="written while it trains"):
        report.run(["--model_dir", str(lm_dir)])


def test_score_writes_parquet_pandas_and_duckdb_read(mini_model, mini_dir, tmp_path):
    out = tmp_path / "scored"
    manifest = score.run(
        [
            "--input",
            str(mini_dir),
            "--model_dir",
            str(mini_model),
            "--output_dir",
            str(out),
            "--passthrough_columns",
            "rating,folder",
            "--allow_unblessed",
        ]
    )
    assert manifest["counts"] == {"records_in": 1496, "scored": 1496, "quarantined": 0, "balanced": True}
    assert manifest["model"]["blessed"] is False
    files = sorted((out / names.SCORED_DIR).glob("*.parquet"))
    assert pq.read_schema(files[0]) == arrow.scored_schema(["rating", "folder"])
    frame = pd.read_parquet(out / names.SCORED_DIR)
    assert len(frame) == 1496 and frame["id"].is_unique
    assert frame["probability"].between(0, 1).all()
    info = json.loads((mini_model / names.MODEL_INFO_FILE).read_text())
    assert set(frame["model_version"]) == {info["model_version"]}
    assert set(frame["predicted_label"]) <= set(names.LABELS)
    assert set(frame.loc[frame["folder"] == "unsup", "rating"]) == {"0"}
    rows = duckdb.sql(
        f"select folder, count(*) from '{out}/{names.SCORED_DIR}/*.parquet' group by folder order by folder"
    ).fetchall()
    assert rows == [("neg", 498), ("pos", 498), ("unsup", 500)]


@pytest.mark.slow
def test_ingest_rerun_in_multiprocess_mode_gives_identical_outputs(mini_dir, mini_dataset, tmp_path):
    _, first = mini_dataset
    beam_flags = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    second = ingest.run(
        ["--input", str(mini_dir), "--output_dir", str(tmp_path / "again"), "--vocab_size", "8000", *beam_flags]
    )
    assert second["outputs"] == first["outputs"]
    assert second["dataset_fingerprint"] == first["dataset_fingerprint"]


def test_length_sorted_calls_cover_every_text_once():
    texts = ["ccc", "a", "bbbb", "dd", "e"]
    calls = score.length_sorted_calls(texts, 2)
    assert [[texts[i] for i in call] for call in calls] == [["a", "e"], ["dd", "ccc"], ["bbbb"]]
    assert score.length_sorted_calls(texts, 0) == score.length_sorted_calls(texts, 5) == [[0, 1, 2, 3, 4]]
    assert score.length_sorted_calls([], 2) == []


def test_length_bucketed_model_calls_return_results_in_batch_order(mini_model, mini_dir):
    texts = [path.read_text(encoding="utf-8") for path in sorted((mini_dir / "test" / "pos").glob("*.txt"))[:7]]
    texts += ["", "short <br /> review", texts[0] * 3]
    export_dir = str(mini_model / names.MODEL_EXPORT_DIR)
    task = tasks.get("classification")
    one_call, bucketed = (
        SignatureModelHandler(export_dir, task.score_signature, task.score_outputs, bucket_size=0),
        SignatureModelHandler(export_dir, task.score_signature, task.score_outputs, bucket_size=3),
    )
    model = one_call.load_model()
    expected = [r.inference for r in one_call.run_inference(texts, model)]
    results = list(bucketed.run_inference(texts, model))
    assert [r.example for r in results] == texts
    assert [r.inference["num_tokens"] for r in results] == [e["num_tokens"] for e in expected]
    np.testing.assert_allclose(
        [r.inference["probability"] for r in results], [e["probability"] for e in expected], atol=1e-6
    )
