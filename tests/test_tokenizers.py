"""Every tokenizer: the ids ingest writes equal the ids the model's preprocessing computes from raw text.

Also: a vocabulary reused from another dataset directory (--vocabulary) gives identical ids,
and the vocab.tsv format round-trips tokens that are whitespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf

from lstm_model import data
from pipelines import ingest
from schemas import names
from schemas.tfrecord import feature_spec
from textprep import vocabulary as vocabulary_format
from textprep.preprocessing import TextPreprocessor, TextSpec

SHAKESPEARE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory) -> Path:
    """400 non-empty lines of Shakespeare, plus a few with markup, accents and odd spacing."""
    lines = [line for line in SHAKESPEARE.read_text(encoding="utf-8").splitlines() if line.strip()][:400]
    lines += ["Caf\u00e9 &amp; <b>bold</b>   spaced\ttab", "ＦＵＬＬ width and emoji 😀", "don't stop rock'n'roll"]
    path = tmp_path_factory.mktemp("lines") / "lines.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ingest(source: Path, out: Path, *flags: str) -> dict:
    return ingest.run(
        ["--task", "language_model", "--input", str(source), "--input_format", "lines", "--output_dir", str(out)]
        + ["--validation_fraction", "0.2", "--vocab_size", "300", "--min_count", "1", *flags]
        # Speaker names repeat ("First Citizen:"): dedupe quarantines the copies, which is fine here.
        + ["--max_quarantine_rate", "1", "--max_duplicate_rate", "1"]
    )


@pytest.fixture(scope="module")
def ingested(lines_file, tmp_path_factory):
    """tokenizer -> (dataset dir, manifest), each ingested once per module."""
    cache = {}

    def get(tokenizer: str):
        if tokenizer not in cache:
            out = tmp_path_factory.mktemp(f"dataset_{tokenizer}")
            cache[tokenizer] = (out, _ingest(lines_file, out, "--tokenizer", tokenizer))
        return cache[tokenizer]

    return get


def _written_ids(dataset_dir: Path) -> dict[str, list[int]]:
    ids = {}
    spec = feature_spec(with_label=False)
    for split in ("train", "validation"):
        for path in data.split_files(str(dataset_dir), split):
            for record in tf.data.TFRecordDataset([path], compression_type="GZIP"):
                example = tf.io.parse_single_example(record, spec)
                ids[example[names.FEATURE_ID].numpy().decode()] = example[names.FEATURE_TOKEN_IDS].numpy().tolist()
    return ids


@pytest.mark.parametrize("tokenizer", ["char", "word", "wordpiece"])
def test_model_preprocessing_gives_ingest_ids(lines_file, ingested, tokenizer):
    dataset_dir, manifest = ingested(tokenizer)
    spec = TextSpec.from_dict(manifest["preprocessing"])
    assert spec.tokenizer == tokenizer
    vocabulary = data.read_vocabulary(str(dataset_dir / names.VOCAB_FILE))
    assert tuple(vocabulary[:4]) == names.GENERATIVE_RESERVED_TOKENS
    written = _written_ids(dataset_dir)
    raw = {f"lines.txt:{n}": line for n, line in enumerate(lines_file.read_text(encoding="utf-8").split("\n"), 1)}
    # The exported model runs TextPreprocessor.ids inside a graph, from raw text: do the same here.
    preprocessor = TextPreprocessor(vocabulary, spec=spec)
    ids_of = tf.function(preprocessor.ids, input_signature=[tf.TensorSpec([None], tf.string)])
    keys = sorted(written)
    computed = ids_of(tf.constant([raw[k] for k in keys])).to_list()
    assert len(keys) > 250
    for key, ids in zip(keys, computed, strict=True):
        assert written[key] == ids, key
    if tokenizer == "wordpiece":
        assert any(token.startswith(names.WORDPIECE_SUFFIX) for token in vocabulary)
    # Detokenizing gives text back: exactly for characters, words joined by spaces otherwise.
    back = preprocessor.detokenize(tf.ragged.constant([written[keys[0]]])).numpy()[0].decode()
    cleaned = preprocessor.clean(tf.constant([raw[keys[0]]])).numpy()[0].decode()
    if tokenizer == "char":
        assert back == cleaned
    else:
        assert back.replace(" ", "") == cleaned.replace(" ", "") or "[UNK]" in back


def test_reused_vocabulary_gives_identical_ids(lines_file, ingested, tmp_path):
    first_dir, first = ingested("word")
    second = _ingest(lines_file, tmp_path / "b", "--vocabulary", str(first_dir))
    assert second["vocabulary"]["from"] == str(first_dir)
    assert second["preprocessing"] == first["preprocessing"]
    assert (first_dir / names.VOCAB_FILE).read_bytes() == (tmp_path / "b" / names.VOCAB_FILE).read_bytes()
    assert _written_ids(first_dir) == _written_ids(tmp_path / "b")


def test_reused_vocabulary_refuses_contradicting_flags(lines_file, ingested, tmp_path):
    char_dir, _ = ingested("char")
    with pytest.raises(ingest.UserError, match="contradicts the vocabulary"):
        _ingest(lines_file, tmp_path / "b", "--vocabulary", str(char_dir), "--tokenizer", "word")
    with pytest.raises(ingest.UserError, match="expected a dataset or model directory"):
        _ingest(lines_file, tmp_path / "c", "--vocabulary", str(tmp_path / "nothing_here"))


def test_vocab_file_round_trips_whitespace_tokens():
    rows = [(t, 0) for t in names.GENERATIVE_RESERVED_TOKENS] + [(" ", 9), ("\n", 5), ("\t", 2), ("\\", 1), ("a", 1)]
    text = vocabulary_format.format_vocabulary(rows)
    assert text.count("\n") == len(rows)  # one line per token
    assert vocabulary_format.parse_vocabulary(text) == rows
    with pytest.raises(vocabulary_format.VocabularyError, match="not 'token<TAB>count'"):
        vocabulary_format.parse_vocabulary("[PAD]\t0\n[UNK]\t0\nbroken line\n")


@pytest.mark.parametrize("tokenizer", ["word", "wordpiece"])
def test_a_vocabulary_of_reserved_tokens_only_maps_every_word_to_oov(tokenizer):
    # What a run gets when its vocabulary splits hold no text (e.g. only a val file): the ids are all
    # [UNK] and the run's validation reports the missing training records, instead of a failed step.
    spec = TextSpec(tokenizer=tokenizer)
    preprocessor = TextPreprocessor(list(spec.reserved_tokens), spec=spec)
    ids = preprocessor.ids(tf.constant(["ein hund läuft", "x"]), already_clean=True).to_list()
    assert ids == [[names.OOV_ID] * 3, [names.OOV_ID]]
