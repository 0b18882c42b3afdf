"""The language_model task end to end on a slice of tiny Shakespeare, and its model's pieces.

Tiny models on a 30k-character slice: the tests check plumbing, causality, determinism
and parity between ingest and the exported model, not quality.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from lstm_model import causal_lm
from lstm_model.config import LanguageModelConfig
from pipelines import common, generate, ingest, score
from schemas import names

SHAKESPEARE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
TINY_LM_FLAGS = [
    "--embedding_dim",
    "16",
    "--lstm_units",
    "32",
    "--num_layers",
    "2",
    "--epochs",
    "2",
    "--steps_per_epoch",
    "8",
    "--batch_size",
    "8",
    "--sequence_length",
    "32",
    "--verbose",
    "0",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if not SHAKESPEARE.is_file():
        pytest.fail(f"tiny Shakespeare is missing at {SHAKESPEARE} (see ../shared/data/README.md)")
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "input.txt").write_text(SHAKESPEARE.read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    return folder / "input.txt"


@pytest.fixture(scope="module")
def char_dataset(tmp_path_factory, corpus) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("lm_dataset")
    manifest = ingest.run(
        [
            "--task",
            "language_model",
            "--input",
            str(corpus),
            "--input_format",
            "text",
            "--split_by",
            "position",
            "--output_dir",
            str(out),
        ]
    )
    return out, manifest


@pytest.fixture(scope="module")
def char_model(tmp_path_factory, char_dataset) -> Path:
    from lstm_model import train

    dataset_dir, _ = char_dataset
    model_dir = tmp_path_factory.mktemp("lm_model")
    train.run(["--dataset_dir", str(dataset_dir), "--model_dir", str(model_dir), "--overwrite", *TINY_LM_FLAGS])
    return model_dir


def test_ingest_cuts_one_text_as_nanogpt_does(char_dataset, corpus):
    _, manifest = char_dataset
    text = corpus.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)  # nanoGPT: train = data[:int(n * 0.9)]
    assert manifest["task"] == "language_model"
    assert manifest["splits"]["train"]["tokens"] == cut
    assert manifest["splits"]["validation"]["tokens"] == len(text) - cut
    assert manifest["splits"]["train"]["chars"] == cut
    assert manifest["counts"] == {
        "input_files": 1,
        "records_in": 1,
        "records_out": 2,
        "documents_out": 1,
        "quarantined": 0,
        "balanced": True,
    }
    assert manifest["preprocessing"]["tokenizer"] == "char"
    assert manifest["preprocessing"]["whitespace"] == "keep"  # newlines are part of what a char model learns
    assert manifest["vocabulary"]["size"] == len(set(text[:cut])) + 4


def test_train_writes_metrics_report_and_blessing(char_model):
    metrics = json.loads((char_model / names.MODEL_METRICS_FILE).read_text())
    validation = metrics["validation"]
    assert validation["nats_per_token"] > 0
    # A character model: bits per char = nats per token / ln 2 (up to the [EOS] at the end of the text).
    assert validation["bits_per_char"] == pytest.approx(validation["nats_per_token"] / math.log(2), rel=1e-3)
    assert metrics["baseline"]["model"].startswith("Kneser-Ney")
    assert metrics["deciding"] == {"metric": "nats_per_token", "split": "validation", "lower_is_better": True}
    assert len(metrics["curve"]) == metrics["epochs_run"] == 2
    blessing = json.loads((char_model / names.MODEL_BLESSING_FILE).read_text())
    assert blessing["blessed"] is False  # 16 steps of a tiny LSTM do not beat a 7-gram
    assert "lower is better" in blessing["reason"]
    assert (char_model / "report" / "index.html").is_file()
    samples = json.loads((char_model / "samples.json").read_text())
    assert {s["temperature"] for s in samples} == {0.5, 0.8, 1.0}
    info = json.loads((char_model / names.MODEL_INFO_FILE).read_text())
    assert info["task"] == "language_model" and info["preprocessing"]["tokenizer"] == "char"


def test_exported_ids_equal_ingest_ids(char_dataset, char_model, corpus):
    """The exported model's preprocessing gives the ids ingest wrote (the validation piece of the text)."""
    from lstm_model import lm_data
    from lstm_model.export import load_exported

    dataset_dir, _ = char_dataset
    text = corpus.read_text(encoding="utf-8")
    piece = text[int(len(text) * 0.9) :]
    preprocess = load_exported(str(char_model / names.MODEL_EXPORT_DIR)).signatures[names.PREPROCESS_SIGNATURE]
    exported = preprocess(text=tf.constant([piece]))["token_ids"].numpy()[0].tolist()
    written = lm_data.token_stream(str(dataset_dir), "validation").tolist()
    assert written == exported + [names.EOS_ID]


def _generate(model_dir: Path, prompts: Path, out: Path, *flags: str) -> dict:
    return generate.run(
        [
            "--input",
            str(prompts),
            "--model_dir",
            str(model_dir),
            "--output_dir",
            str(out),
            "--allow_unblessed",
            "--max_new_tokens",
            "40",
            "--seed",
            "7",
            "--max_quarantine_rate",
            "1.0",
            *flags,
        ]
    )


def test_generate_is_reproducible_and_quarantines_bad_prompts(char_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    # ROMEO and JULIET are fine; an empty line and a prompt of characters the model never saw are quarantined.
    prompts.write_text("ROMEO:\nJULIET:\n\n\u2603\u2603\u2603\n", encoding="utf-8")
    first = _generate(char_model, prompts, tmp_path / "a")
    _generate(char_model, prompts, tmp_path / "b", "--batch_size", "1")  # other batching, same text
    assert first["counts"] == {"records_in": 4, "generated": 2, "quarantined": 2, "balanced": True}
    assert first["quarantine"]["by_reason"] == {"empty_text": 1, "prompt_out_of_vocabulary": 1}
    a = pd.read_parquet(tmp_path / "a" / names.GENERATED_DIR).sort_values("id")
    b = pd.read_parquet(tmp_path / "b" / names.GENERATED_DIR).sort_values("id")
    assert list(a["generated_text"]) == list(b["generated_text"])
    assert (a["num_tokens"] == 40).all() or (a["num_tokens"] <= 40).all()
    assert list(a["prompt"]) == ["ROMEO:", "JULIET:"]
    assert a["generated_text"].str.len().gt(0).all()
    other_seed = _generate(char_model, prompts, tmp_path / "c", "--seed", "8")
    c = pd.read_parquet(tmp_path / "c" / names.GENERATED_DIR).sort_values("id")
    assert other_seed["counts"]["generated"] == 2
    assert list(c["generated_text"]) != list(a["generated_text"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--top_p", "0"], "--top_p must be in (0, 1]"),
        (["--top_p", "1.5"], "--top_p must be in (0, 1]"),
        (["--top_k", "-1"], "--top_k must be >= 0"),
    ],
)
def test_bad_sampling_settings_are_one_line_errors(char_model, tmp_path, flags, message):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\n")
    with pytest.raises(common.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _generate(char_model, prompts, tmp_path / "out", *flags)


def test_long_prompt_is_quarantined(char_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\n" + "a" * 500 + "\n")
    manifest = _generate(char_model, prompts, tmp_path / "out", "--max_prompt_chars", "100")
    assert manifest["quarantine"]["by_reason"] == {"text_too_long": 1}


def test_score_with_a_language_model(char_model, tmp_path):
    import duckdb

    docs = tmp_path / "docs.jsonl"
    rows = [
        {"id": "verse", "text": "ROMEO:\nBut soft, what light through yonder window breaks?"},
        {"id": "noise", "text": "qxzj vvkw zzqx jjjq xxkz qqwv"},
    ]
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = score.run(
        [
            "--input",
            str(docs),
            "--input_format",
            "jsonl",
            "--model_dir",
            str(char_model),
            "--output_dir",
            str(tmp_path / "scored"),
            "--allow_unblessed",
        ]
    )
    assert manifest["task"] == "language_model" and manifest["counts"]["balanced"]
    scored = duckdb.sql(
        f"select id, nats_per_token, bits_per_char, num_tokens, num_chars from '{tmp_path}/scored/scored/*.parquet' order by id"
    ).fetchall()
    assert [row[0] for row in scored] == ["noise", "verse"]
    for _, nats, bits, tokens, chars in scored:
        assert nats > 0 and tokens == chars  # characters are the tokens
        assert bits == pytest.approx(nats / math.log(2), rel=1e-4)


def test_log_likelihood_equals_the_training_loss(char_model):
    """The exported log_likelihood of a text equals the model's own NLL on [EOS] + its ids."""
    from lstm_model import data
    from lstm_model.export import load_exported

    exported = load_exported(str(char_model / names.MODEL_EXPORT_DIR))
    text = "First Citizen:\nBefore we proceed any further, hear me speak."
    out = exported.signatures[names.LOG_LIKELIHOOD_SIGNATURE](text=tf.constant([text]))
    config = LanguageModelConfig.from_json(char_model / names.MODEL_CONFIG_FILE)
    vocabulary = data.read_vocabulary(str(char_model / names.VOCAB_FILE))
    lm = causal_lm.CausalLM(config, len(vocabulary))
    lm.model.load_weights(str(char_model / "model.weights.h5"))
    ids = [names.EOS_ID] + [vocabulary.index(ch) if ch in vocabulary else names.OOV_ID for ch in text]
    nll = lm.model(np.array([ids], np.int32), training=False).numpy().sum()
    assert float(out["total_nats"].numpy()[0]) == pytest.approx(float(nll), rel=1e-4)
    assert int(out["num_tokens"].numpy()[0]) == len(text)


def test_causal_model_never_sees_the_token_it_predicts():
    """Changing input token t changes no prediction made at positions < t (the one at t - 1 predicts token t)."""
    config = LanguageModelConfig(embedding_dim=8, lstm_units=16, num_layers=2, dropout=0.0, tie_embeddings=True)
    lm = causal_lm.CausalLM(config, 30)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 30, size=(1, 12)).astype(np.int32)

    def logits_of(token_ids):  # [time, vocabulary]: position p predicts token p + 1 from tokens <= p
        return lm.head.logits(lm.hidden_states(tf.constant(token_ids), training=False)).numpy()[0]

    base = logits_of(ids)
    for t in range(1, 12):
        changed = ids.copy()
        changed[0, t] = 4 + (changed[0, t] - 4 + 1) % 26
        after = logits_of(changed)
        np.testing.assert_array_equal(after[:t], base[:t])  # predictions up to token t: untouched
        assert np.abs(after[t:] - base[t:]).max() > 1e-6  # later positions do read token t


def test_step_and_prompt_state_agree_with_the_whole_sequence():
    config = LanguageModelConfig(embedding_dim=8, lstm_units=16, num_layers=2, dropout=0.0)
    lm = causal_lm.CausalLM(config, 25)
    ids = tf.constant([[5, 6, 7, 8, 9, 10], [11, 12, 13, 0, 0, 0]], tf.int32)
    lengths = tf.constant([6, 3])
    whole = lm.token_log_probs(ids, lengths).numpy()
    state, last = lm.prompt_state(ids, lengths)
    assert last.numpy().tolist() == [10, 13]
    stepped_state = lm.zero_state(2)
    for t in range(5):
        logits, stepped_state = lm.step(ids[:, t], stepped_state)
        log_probs = tf.nn.log_softmax(logits).numpy()
        for row in range(2):
            if t + 1 < int(lengths[row]):
                assert log_probs[row, int(ids[row, t + 1])] == pytest.approx(whole[row, t], abs=1e-5)
    # The state after all but the last prompt token: row 0 after 5 tokens.
    np.testing.assert_allclose(state[-1][0].numpy()[0], stepped_state[-1][0].numpy()[0], atol=1e-6)


def test_sampled_softmax_trains_and_evaluates_exactly():
    """A large vocabulary trains on a sampled softmax; evaluation is the exact softmax (the same as token_log_probs)."""
    config = LanguageModelConfig(embedding_dim=8, lstm_units=16, num_layers=1, num_sampled=-1)
    lm = causal_lm.CausalLM(config, 5000)
    assert lm.head.num_sampled == 1024  # auto: sampled above 4,096 tokens
    model = causal_lm.compile_language_model(lm)
    windows = np.random.default_rng(1).integers(4, 5000, size=(4, 17)).astype(np.int32)
    first = float(model.train_on_batch(windows))
    assert np.isfinite(first)
    exact = model(windows, training=False).numpy().sum()
    log_probs = lm.token_log_probs(tf.constant(windows), tf.constant([17] * 4)).numpy().sum()
    assert exact == pytest.approx(-log_probs, rel=1e-4)
    assert LanguageModelConfig(num_sampled=0).sampled_candidates(50_000) == 0
    assert LanguageModelConfig(num_sampled=-1).sampled_candidates(69) == 0


@pytest.mark.cloud
def test_dataflow_dry_run_generate_and_lm_score(tmp_path, char_model):
    """Both LM pipelines build their Dataflow jobs offline (tests/cloud_check.py); GPU workers ask for their
    accelerator through Dataflow's service options, which the job carries."""
    from tests import cloud_check

    root = tmp_path / "bucket"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "prompts.txt").write_text("ROMEO:\nJULIET:\n", encoding="utf-8")
    (root / "raw" / "docs.txt").write_text("To be, or not to be.\n", encoding="utf-8")
    gpu = ["--dataflow_service_options", "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    with cloud_check.gs_bucket(root) as bucket:
        model = cloud_check.upload(root, char_model, "models/lm")
        for name, module, steps in (
            ("generate", generate, ["Read", "RunInference", "WriteRunSummary", "WriteManifest"]),
            ("score", score, ["Read", "RunInference", "WriteRunSummary", "WriteManifest"]),
        ):
            job_file = tmp_path / f"{name}.json"
            raw = f"{bucket}/raw/{'prompts' if name == 'generate' else 'docs'}.txt"
            argv = ["--input", raw, "--input_format", "lines", "--model_dir", model, "--allow_unblessed",
                    "--output_dir", f"{bucket}/{name}/{{date}}"]  # fmt: skip
            description = module.run([*argv, *cloud_check.dataflow_args(job_file, *gpu)])
            written = cloud_check.check_job(
                description, job_file, steps=steps, local_roots=[str(root), str(char_model)], gs_paths=[model, raw]
            )
            assert "install-nvidia-driver" in json.dumps(written["job"]["environment"]["serviceOptions"])
