"""The translation model: causality, decoding, the trainer end to end (stop + resume), the export.

Tiny models on a Multi30k slice (translation_fixture): plumbing, causality, determinism and parity
between the ids a dataset holds and the exported model's, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_model import sampling, seq2seq
from schemas import names
from tests import translation_fixture

TINY_FLAGS = [
    "--embedding_dim", "16", "--units", "16", "--batch_size", "32", "--epochs", "2", "--beam_width", "2",
    "--validation_bleu_sentences", "20", "--early_stopping_patience", "0", "--verbose", "0",
]  # fmt: skip


def _tiny_model(attention: str = "luong", layers: int = 1, tie: bool = False) -> seq2seq.Seq2Seq:
    keras.utils.set_random_seed(1)
    config = seq2seq.TranslationConfig(
        embedding_dim=8, units=12, layers=layers, attention=attention, dropout=0.0, tie_embeddings=tie
    )
    model = seq2seq.Seq2Seq(config, 23, 29).build_all()
    # Spread the output bias so an untrained model's argmax differs from token to token.
    bias = model.output_layer.bias
    bias.assign(tf.random.stateless_normal(bias.shape, seed=[3, 4]) * 2.0)
    return model


SOURCE = tf.constant([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0], [11, 3, 0, 0, 0]], tf.int32)
SOURCE_TOKENS = tf.constant([4, 2, 1], tf.int32)


@pytest.mark.parametrize("attention,layers,tie", [("luong", 1, False), ("bahdanau", 2, False), ("luong", 1, True)])
def test_decoder_at_step_t_never_sees_later_target_tokens(attention, layers, tie):
    model = _tiny_model(attention, layers, tie)
    target = tf.constant([[2, 5, 6, 7, 8, 9], [2, 10, 11, 12, 13, 14], [2, 4, 4, 4, 4, 4]], tf.int32)
    logits = model([SOURCE, target], training=False).numpy()
    for t in (1, 4):
        changed = tf.concat([target[:, :t], tf.fill([3, 6 - t], 20)], axis=1)
        again = model([SOURCE, changed], training=False).numpy()
        np.testing.assert_allclose(again[:, :t], logits[:, :t], atol=1e-5)
        assert np.abs(again[:, t:] - logits[:, t:]).max() > 1e-4  # later positions do read the changed tokens
    # The step function (decoding) computes the same logits as teacher forcing.
    state = model.initial_state(SOURCE, tf.fill([3], 100))
    for t in range(6):
        step_logits, state = model.step(target[:, t], state)
        np.testing.assert_allclose(step_logits.numpy(), logits[:, t], atol=1e-4)


def test_tied_output_shares_the_target_embedding_and_the_sampled_loss_trains_it():
    model = seq2seq.compile_model(_tiny_model(tie=True))
    names_ = [v.path for v in model.trainable_variables]
    assert not any(n.endswith("output/kernel") for n in names_)  # no separate output matrix
    assert any("tie_projection" in n for n in names_)  # embedding width 8 != 12 units: projected
    matrix, bias = model.output_weights()
    assert matrix.shape == (29, 8) and bias.shape == (29,)
    target_in = tf.constant([[2, 5, 6, 7, 8], [2, 9, 10, 0, 0], [2, 11, 0, 0, 0]], tf.int32)
    target_out = tf.constant([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0], [11, 3, 0, 0, 0]], tf.int32)

    def full_nll():
        _, nll, real = seq2seq.token_losses(model([SOURCE, target_in], training=False), target_out)
        return float(tf.reduce_sum(nll) / tf.reduce_sum(real))

    before = full_nll()
    embedding = model.target_embedding.embeddings
    start = embedding.numpy().copy()
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss, real = seq2seq.sampled_token_losses(model, SOURCE, target_in, target_out, num_sampled=5)
            mean = tf.reduce_sum(loss) / tf.reduce_sum(real)
        assert np.isfinite(mean.numpy()) and (loss.numpy()[real.numpy() == 0] == 0).all()
        gradients = tape.gradient(mean, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
    assert full_nll() < before - 0.5  # the sampled loss lowers the exact (full softmax) NLL
    assert np.abs(embedding.numpy() - start).max() > 0  # through the shared matrix


@pytest.mark.parametrize("attention", seq2seq.ATTENTION_TYPES)
def test_greedy_equals_beam_width_1_and_rows_do_not_depend_on_their_batch(attention):
    model = _tiny_model(attention)
    settings = {"length_penalty": 0.0, "max_length_a": 1.5, "max_length_b": 2}
    greedy = seq2seq.translate_ids(model, SOURCE, SOURCE_TOKENS, beam_width=1, **settings)
    budgets = seq2seq.max_lengths(SOURCE_TOKENS, 1.5, 2)
    beam = sampling.beam_search(
        model.step,
        model.initial_state(SOURCE, budgets),
        tf.fill([3], names.BOS_ID),
        tf.reduce_max(budgets) + 1,
        beam_width=1,
        stop_ids=[names.EOS_ID],
    )
    width = greedy["token_ids"].shape[1]
    np.testing.assert_array_equal(greedy["token_ids"].numpy(), beam["token_ids"].numpy()[:, :width])
    np.testing.assert_array_equal(greedy["num_tokens"].numpy(), beam["num_tokens"].numpy())
    np.testing.assert_allclose(greedy["log_prob"].numpy(), beam["log_prob"].numpy(), rtol=1e-5)
    # Budgets: floor(1.5 * source tokens) + 2 tokens at most, then [EOS].
    assert (greedy["num_tokens"].numpy() <= budgets.numpy()).all()
    wide = seq2seq.translate_ids(model, SOURCE, SOURCE_TOKENS, beam_width=3, **settings)
    for row in range(3):
        alone = seq2seq.translate_ids(
            model, SOURCE[row : row + 1, : int(SOURCE_TOKENS[row]) + 1], SOURCE_TOKENS[row : row + 1], beam_width=3,
            **settings,
        )  # fmt: skip
        n = int(alone["num_tokens"][0])
        assert n == int(wide["num_tokens"][row])
        np.testing.assert_array_equal(alone["token_ids"].numpy()[0, :n], wide["token_ids"].numpy()[row, :n])


def test_model1_baseline_learns_a_dictionary():
    from lstm_model.dictionary_baseline import fit_model1

    # source 10 = "haus" -> target 20 = "house", 11 = "das" -> 21 = "the", 12 = "rot" -> 22 = "red"
    pairs = [([11, 10], [21, 20]), ([11, 12, 10], [21, 22, 20]), ([12], [22]), ([11], [21])] * 3
    dictionary = fit_model1([s for s, _ in pairs], [t for _, t in pairs], iterations=10)
    assert dictionary == {10: 20, 11: 21, 12: 22}


# ---------------------------------------------------------------------------------------------- the trainer
SLICE = {"train": 240, "val": 24, "test_2016_flickr": 24}  # lines of each Multi30k file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A Multi30k slice through the real ingest pipeline (--task translation --input_format parallel)."""
    import gzip

    from pipelines import ingest

    raw = tmp_path_factory.mktemp("mt_raw")
    for stem, count in SLICE.items():
        for language in ("de", "en"):
            with gzip.open(translation_fixture.MULTI30K / f"{stem}.{language}.gz", "rt", encoding="utf-8") as handle:
                lines = handle.read().split("\n")[:count]
            (raw / f"{stem}.{language}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("mt_dataset")
    ingest.run(
        ["--task", "translation", "--input_format", "parallel", "--input", str(raw), "--source_language", "de",
         "--target_language", "en", "--tokenizer", "word", "--min_count", "1", "--max_quarantine_rate", "0.5",
         "--output_dir", str(out), "--overwrite"]
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> tuple[Path, dict]:
    """One epoch, a stop (--stop_after_epochs 1), then --resume to the configured 2 epochs."""
    from lstm_model import train

    model_dir = tmp_path_factory.mktemp("mt_model")
    argv = ["--dataset_dir", str(dataset), "--model_dir", str(model_dir), *TINY_FLAGS]
    first = train.run([*argv, "--overwrite", "--stop_after_epochs", "1"])
    assert first["stopped_after_epoch"] == 1
    state = json.loads((model_dir / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not (model_dir / names.MODEL_METRICS_FILE).exists()  # no metrics beside a half-trained model
    metrics = train.run([*argv, "--resume"])
    return model_dir, metrics


def test_trainer_resumes_to_the_same_total_of_epochs_and_writes_everything(trained):
    model_dir, metrics = trained
    assert metrics["epochs_run"] == 2
    history = json.loads((model_dir / names.MODEL_HISTORY_FILE).read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert history[1]["steps"] > history[0]["steps"]
    written = json.loads((model_dir / names.MODEL_METRICS_FILE).read_text())
    test = written[names.SPLIT_TEST]
    assert 0.0 <= test["bleu"] <= 100.0 and 0.0 <= test["chrf"] <= 100.0
    assert "tok:13a" in test["bleu_signature"] and test["sentences"] >= 20
    for decoding in ("beam", "greedy"):
        assert test[decoding]["sentences_per_second"] > 0 and "bleu" in test[decoding]
    assert "bleu" in written[names.SPLIT_VALIDATION] and "loss" in written[names.SPLIT_VALIDATION]
    assert "bleu" in written["baseline"][names.SPLIT_TEST]
    blessing = json.loads((model_dir / names.MODEL_BLESSING_FILE).read_text())
    assert blessing["metric"] == "bleu" and isinstance(blessing["blessed"], bool)
    report = (model_dir / names.MODEL_REPORT_DIR / "index.html").read_text()
    assert "attention_1.png" in report and (model_dir / names.MODEL_REPORT_DIR / "attention_1.png").is_file()
    info = json.loads((model_dir / names.MODEL_INFO_FILE).read_text())
    assert info["task"] == names.TASK_TRANSLATION and info["model_version"].startswith("lstm-mt-")
    assert info["vocabulary_size"] == len((model_dir / names.VOCAB_FILE).read_text().splitlines())
    assert list((model_dir / "logs").iterdir())  # TensorBoard events


@pytest.fixture(scope="module")
def exported(trained):
    from lstm_model.export import load_exported

    return load_exported(str(trained[0] / names.MODEL_EXPORT_DIR))


def _translate(exported, signature: str, sources: list[str]) -> dict:
    out = exported.signatures[signature](
        source=tf.constant(sources), max_length_a=tf.constant(1.5), max_length_b=tf.constant(10)
    )
    return {key: value.numpy() for key, value in out.items()}


def test_exported_translate_takes_raw_strings_and_is_deterministic(exported):
    sources = translation_fixture.read_lines(names.SPLIT_TEST, "de", 5) + ["", "  <b>Ein  Hund</b> läuft! "]
    for signature in (names.TRANSLATE_SIGNATURE, "translate_greedy"):
        first = _translate(exported, signature, sources)
        again = _translate(exported, signature, sources)
        assert first["translation"].dtype == object and len(first["translation"]) == len(sources)
        assert all(isinstance(text.decode("utf-8"), str) for text in first["translation"])
        for key in ("translation", "num_tokens", "source_tokens", "source_oov"):
            np.testing.assert_array_equal(first[key], again[key])
        assert first["log_prob"].dtype == np.float32 and (first["log_prob"] <= 0).all()
        assert first["source_tokens"][len(sources) - 2] == 0  # the empty source
        alone = _translate(exported, signature, sources[1:2])  # a row does not depend on its batch
        assert alone["translation"][0] == first["translation"][1]
        assert (first["num_tokens"] <= np.floor(1.5 * np.minimum(first["source_tokens"], 100)) + 10).all()
    attention = _translate(exported, "attention", sources[:3])
    weights = attention["attention"]
    assert weights.shape[0] == 3 and weights.shape[2] == attention["source_pieces"].shape[1]
    for row in range(3):
        steps = int(attention["num_tokens"][row]) + 1
        np.testing.assert_allclose(weights[row, :steps].sum(-1), 1.0, atol=1e-4)
        assert attention["target_pieces"][row][steps - 1] == b"[EOS]"


def test_exported_preprocess_ids_equal_the_dataset_ids(dataset, exported):
    """The ids the exported model computes from raw Multi30k lines equal the ids in the dataset's records."""
    from lstm_model import data
    from schemas.tfrecord import translation_feature_spec

    lines = translation_fixture.read_lines(names.SPLIT_TEST, "de", SLICE["test_2016_flickr"])
    spec = translation_feature_spec()
    records = [
        tf.io.parse_single_example(serialized, spec)
        for serialized in tf.data.TFRecordDataset(data.split_files(str(dataset), names.SPLIT_TEST), "GZIP")
    ]
    assert len(records) >= 20
    # A record's id names its line: "test_2016_flickr:N" is line N (from 1) of the raw file.
    raw = [lines[int(r[names.FEATURE_ID].numpy().decode().rsplit(":", 1)[1]) - 1] for r in records]
    out = exported.signatures[names.PREPROCESS_SIGNATURE](source=tf.constant(raw))
    ids, lengths = out["token_ids"].numpy(), out["num_tokens"].numpy()
    for row, record in enumerate(records):
        assert ids[row, : lengths[row]].tolist() == record[names.FEATURE_SOURCE_IDS].numpy().tolist()


# ---------------------------------------------------------------------------------------------- bulk translation
def test_translate_pipeline_writes_parquet_quarantines_and_reruns_identically(trained, tmp_path):
    """pipelines.translate end to end: lines in (one empty, one out of vocabulary) -> Parquet + quarantine."""
    import pandas as pd

    from pipelines import translate

    model_dir = trained[0]
    sentences = translation_fixture.read_lines(names.SPLIT_TEST, "de", 6) + ["", "ѬѬѬ ѪѪ"]
    source = tmp_path / "sentences.de"
    source.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    outputs = []
    # The rerun shares one model between processes (--large_model, what GPU workers use): the same translations.
    for run, (decoding, extra) in enumerate((("greedy", []), ("greedy", ["--large_model"]), ("beam", []))):
        out = tmp_path / f"out{run}"
        manifest = translate.run(
            ["--input", str(source), "--input_format", "lines", "--model_dir", str(model_dir), "--output_dir",
             str(out), "--decoding", decoding, "--allow_unblessed", "--max_quarantine_rate", "0.5", *extra]
        )  # fmt: skip
        counts = manifest["counts"]
        assert counts == {"records_in": 8, "translated": 6, "quarantined": 2, "balanced": True}
        assert manifest["task"] == names.TASK_TRANSLATION and manifest["decoding"]["decoding"] == decoding
        frame = pd.read_parquet(out / names.TRANSLATED_DIR).sort_values("id")
        assert list(frame.columns)[:4] == ["id", "source", "source_text", "translation"]
        assert sorted(frame["source_text"]) == sorted(sentences[:6])
        beam_width = json.loads((model_dir / names.MODEL_INFO_FILE).read_text())["decoding"]["beam_width"]
        assert (frame["beam_width"] == (1 if decoding == "greedy" else beam_width)).all()
        assert frame["translation"].map(lambda t: isinstance(t, str)).all()
        outputs.append(frame[["id", "translation", "log_prob"]].reset_index(drop=True))
        quarantine = pd.read_json(next((out / names.QUARANTINE_DIR).glob("*.jsonl")), lines=True)
        assert sorted(quarantine["reason"]) == ["empty_text", "prompt_out_of_vocabulary"]
    pd.testing.assert_frame_equal(outputs[0], outputs[1])  # a rerun (shared model) writes the same translations


@pytest.mark.cloud
def test_dataflow_dry_run_translate(tmp_path, trained):
    """The translation pipeline builds its Dataflow job offline (tests/cloud_check.py)."""
    from pipelines import translate
    from tests import cloud_check

    root = tmp_path / "bucket"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "sentences.de").write_text("Ein Hund läuft.\nZwei Männer.\n", encoding="utf-8")
    job_file = tmp_path / "translate.json"
    with cloud_check.gs_bucket(root) as bucket:
        model = cloud_check.upload(root, trained[0], "models/mt")
        raw = f"{bucket}/raw/sentences.de"
        argv = ["--input", raw, "--input_format", "lines", "--model_dir", model, "--allow_unblessed",
                "--output_dir", f"{bucket}/translated/{{date}}"]  # fmt: skip
        description = translate.run([*argv, *cloud_check.dataflow_args(job_file)])
    cloud_check.check_job(
        description,
        job_file,
        steps=["Read", "RunInference", "WriteRunSummary", "WriteManifest"],
        local_roots=[str(root), str(trained[0])],
        gs_paths=[model, raw],
    )
