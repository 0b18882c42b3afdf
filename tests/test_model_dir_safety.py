"""Model directories are data: loaded without unpickling, and a tampered model_info.json or vocab.tsv is
one line (exit 2) in scoring, generation, training's --pretrained_dir and ingest's --vocabulary."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lstm_model import train
from pipelines import common, generate, ingest, score
from schemas import names

from .conftest import TINY_TRAIN_FLAGS

REPO = Path(__file__).resolve().parent.parent


def fails_with(capsys, run, argv, fragment):
    code = common.main_with_user_errors(run, argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and fragment in errors[0], err
    assert "Traceback" not in err


@pytest.fixture
def model_copy(mini_model, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(mini_model, target)
    return target


def _edit_info(model_dir: Path, **changes) -> None:
    path = model_dir / names.MODEL_INFO_FILE
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            info.pop(key)
        else:
            info[key] = value
    path.write_text(json.dumps(info))


_DELETE = object()
_OUTSIDE = "secret.tsv"  # a file beside the model directory, not in it


def _vocab_lines(model_dir: Path) -> list[str]:
    return (model_dir / names.VOCAB_FILE).read_text(encoding="utf-8").splitlines()


def _write_vocab(model_dir: Path, lines: list[str]) -> None:
    (model_dir / names.VOCAB_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _symlink_vocab_outside(model_dir: Path) -> None:
    outside = model_dir.parent / _OUTSIDE
    shutil.copyfile(model_dir / names.VOCAB_FILE, outside)
    (model_dir / names.VOCAB_FILE).unlink()
    (model_dir / names.VOCAB_FILE).symlink_to(outside)


TAMPERING = {
    "info_not_an_object": (lambda m: (m / names.MODEL_INFO_FILE).write_text("[1, 2]"), "(a JSON list)"),
    "info_not_utf8": (lambda m: (m / names.MODEL_INFO_FILE).write_bytes(b'{"a": "\xff"}'), "cannot read"),
    "model_version_a_number": (lambda m: _edit_info(m, model_version=42), "model_version must be a non-empty string"),
    "vocabulary_size_missing": (lambda m: _edit_info(m, vocabulary_size=_DELETE), "(no vocabulary_size)"),
    "vocabulary_size_a_string": (lambda m: _edit_info(m, vocabulary_size="8000"), "vocabulary_size must be"),
    "unknown_task": (lambda m: _edit_info(m, task="../evil"), "task '../evil' is not one of"),
    "drift_figures_wrong_type": (lambda m: _edit_info(m, dataset_token_length="long"), "dataset_token_length must be"),
    "lowercase_not_a_bool": (
        lambda m: _edit_info(m, preprocessing={"lowercase": "yes"}),
        "preprocessing.lowercase must be true or false",
    ),
    "vocabulary_file_outside": (
        lambda m: _edit_info(m, vocabulary_files={"source": "../../etc/passwd"}),
        "is not a file name inside the model directory",
    ),
    "vocab_symlinked_outside": (_symlink_vocab_outside, "vocab.tsv points outside the model directory"),
    "vocab_bad_line": (lambda m: _write_vocab(m, [*_vocab_lines(m), "no tab here"]), "is not 'token<TAB>count'"),
    "vocab_reserved_swapped": (
        lambda m: _write_vocab(m, [_vocab_lines(m)[1], _vocab_lines(m)[0], *_vocab_lines(m)[2:]]),
        "does not start with",
    ),
    "vocab_not_utf8": (
        lambda m: (m / names.VOCAB_FILE).write_bytes((m / names.VOCAB_FILE).read_bytes() + b"caf\xe9\t3\n"),
        "is not UTF-8 text",
    ),
    "vocab_size_not_matching": (
        lambda m: _write_vocab(m, _vocab_lines(m)[:-3]),
        "the vocabulary does not belong to this model",
    ),
    "blessing_not_an_object": (lambda m: (m / names.MODEL_BLESSING_FILE).write_text('"yes"'), "not a blessing.json"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_model_directory_in_scoring(case, model_copy, mini_dir, tmp_path, capsys):
    tamper, fragment = TAMPERING[case]
    tamper(model_copy)
    argv = ["--input", str(mini_dir), "--model_dir", str(model_copy), "--output_dir", str(tmp_path / "o")]
    fails_with(capsys, score.run, argv + ([] if case.startswith("blessing") else ["--allow_unblessed"]), fragment)
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_tampered_model_directory_in_generation(model_copy, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("To be\n")
    argv = ["--input", str(prompts), "--model_dir", str(model_copy), "--output_dir", str(tmp_path / "o")]
    argv.append("--allow_unblessed")
    # A language model's vocabulary must start with its four reserved tokens.
    _edit_info(
        model_copy,
        task=names.TASK_LANGUAGE_MODEL,
        preprocessing={"reserved_tokens": list(names.GENERATIVE_RESERVED_TOKENS)},
    )
    fails_with(capsys, generate.run, argv, "but the model reserves ['[PAD]', '[UNK]', '[BOS]', '[EOS]']")
    (model_copy / names.MODEL_INFO_FILE).write_text('{"model_version": ')
    fails_with(capsys, generate.run, argv, "cannot read")


def _pretrained_dir(mini_dataset, tmp_path) -> Path:
    """A language model directory as lstm_model.pretrain writes it (the weights are never reached)."""
    from lstm_model.config import PretrainConfig

    dataset_dir, _ = mini_dataset
    directory = tmp_path / "lm"
    directory.mkdir()
    (directory / names.MODEL_CONFIG_FILE).write_text(PretrainConfig().to_json())
    shutil.copyfile(dataset_dir / names.VOCAB_FILE, directory / names.VOCAB_FILE)
    (directory / "language_model.weights.h5").write_bytes(b"not read")
    vocabulary_size = len(_vocab_lines(directory))
    (directory / names.MODEL_INFO_FILE).write_text(
        json.dumps({"task": "language_model", "vocabulary_size": vocabulary_size})
    )
    return directory


PRETRAINED_TAMPERING = {
    "info_not_json": (lambda d: (d / names.MODEL_INFO_FILE).write_text("{oops"), "cannot read"),
    "vocabulary_size_a_list": (lambda d: _edit_info(d, vocabulary_size=[1]), "vocabulary_size must be"),
    "vocabulary_size_not_matching": (lambda d: _edit_info(d, vocabulary_size=3), "model_info.json records 3"),
    "vocab_symlinked_outside": (_symlink_vocab_outside, "vocab.tsv points outside the model directory"),
    "vocab_bad_line": (lambda d: _write_vocab(d, [*_vocab_lines(d)[:-1], "no tab here"]), "is not 'token<TAB>count'"),
    "vocab_reserved_swapped": (
        lambda d: _write_vocab(d, [_vocab_lines(d)[1], _vocab_lines(d)[0], *_vocab_lines(d)[2:]]),
        "does not start with",
    ),
}


@pytest.mark.parametrize("case", sorted(PRETRAINED_TAMPERING))
def test_tampered_pretrained_dir_in_training(case, mini_dataset, tmp_path, capsys):
    dataset_dir, _ = mini_dataset
    pretrained = _pretrained_dir(mini_dataset, tmp_path)
    tamper, fragment = PRETRAINED_TAMPERING[case]
    tamper(pretrained)
    argv = ["--dataset_dir", str(dataset_dir), "--model_dir", str(tmp_path / "m"), "--pretrained_dir", str(pretrained)]
    fails_with(capsys, train.run, [*argv, "--bidirectional", "false", "--verbose", "0", *TINY_TRAIN_FLAGS], fragment)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "case",
    [
        "lowercase_not_a_bool",
        "info_not_an_object",
        "vocab_not_utf8",
        "vocab_size_not_matching",
        "vocab_symlinked_outside",
    ],
)
def test_tampered_vocabulary_dir_in_ingest(case, model_copy, mini_dir, tmp_path, capsys):
    tamper, fragment = TAMPERING[case]
    tamper(model_copy)
    argv = ["--input", str(mini_dir), "--output_dir", str(tmp_path / "o"), "--vocabulary", str(model_copy)]
    fails_with(capsys, ingest.run, argv, fragment)


def test_nothing_is_unpickled_from_a_model_directory():
    """Static guard: model loading code uses no pickle, no allow_pickle=True, and Keras only with safe_mode=True."""
    sources = [
        *REPO.glob("lstm_model/**/*.py"),
        REPO / "pipelines" / "inference.py",
        REPO / "lstm_model" / "model_dir.py",
    ]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bimport pickle\b|\bpickle\.loads?\(|\bdill\b|\bcloudpickle\b", text), path
        assert "allow_pickle=True" not in text and "safe_mode=False" not in text, path
        for call in re.findall(r"(?:keras\.saving\.load_model|keras\.models\.load_model)\([^)]*\)", text):
            assert "safe_mode=True" in call, (path, call)
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (path, call)
