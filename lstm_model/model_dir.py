"""model_info.json and vocab.tsv of a model directory, checked before anything trusts them.

A model directory can come from anywhere (a bucket, a colleague, a download), so what it says
about itself is data to check, not to believe: every model_info.json field other code reads is
checked for its type here, file names it gives must stay inside the directory, and the vocabulary
must parse, start with the model's reserved tokens and have the recorded size. A tampered or
truncated file is then one line (`ModelDirError`, a ValueError; the CLIs turn it into exit 2),
never a traceback deep inside a pipeline.

Nothing in a model directory is unpickled: weights are HDF5 arrays loaded into architectures built
from this project's code, a Keras archive loads with ``safe_mode=True`` (no Python lambdas), the
exported model is a SavedModel loaded with ``tf.saved_model.load`` (a graph of TensorFlow ops), and
optimizer state is ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from schemas import names


class ModelDirError(ValueError):
    """A model directory file that is not what this project writes (the message says which and why)."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _mapping_of(check):
    return lambda value: isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())


def _optional(check):
    return lambda value: value is None or check(value)


# field: (check, what the field must be). Fields not listed are not read by any code that loads a model.
FIELDS = {
    "model_version": (lambda v: isinstance(v, str) and 0 < len(v) <= 200, "a non-empty string"),
    "task": (lambda v: isinstance(v, str), "a string"),
    "vocabulary_size": (lambda v: _integer(v) and v > 0, "a positive integer"),
    "source_vocabulary_size": (lambda v: _integer(v) and v > 0, "a positive integer"),
    "target_vocabulary_size": (lambda v: _integer(v) and v > 0, "a positive integer"),
    "labels": (_string_list, "a list of strings"),
    "preprocessing": (lambda v: isinstance(v, dict), "an object"),
    "dataset_dir": (_optional(lambda v: isinstance(v, str)), "a string"),
    "dataset_fingerprint": (_optional(lambda v: isinstance(v, str)), "a string"),
    "dataset_token_length": (_optional(_mapping_of(_optional(_mapping_of(_optional(_number))))), "{split: {p50: n}}"),
    "dataset_records": (_optional(_mapping_of(_optional(_integer))), "{split: integer}"),
    "dataset_oov_rate": (_optional(_mapping_of(_optional(_number))), "{split: number}"),
    "dataset_quarantine_rate": (_optional(_number), "a number"),
    "splits": (_optional(_string_list), "a list of strings"),
    "vocabulary_files": (_mapping_of(lambda v: isinstance(v, str)), "{side: file name}"),
    "export_dir": (lambda v: isinstance(v, str), "a file name"),
}
REQUIRED_FOR_INFERENCE = ("model_version", "vocabulary_size")


def check_model_info(info: Any, where: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """`info` (parsed model_info.json) if every known field has its type and `required` ones are there."""
    if not isinstance(info, dict):
        raise ModelDirError(f"{where} is not a model_info.json of this project (a JSON {type(info).__name__})")
    missing = [field for field in required if field not in info]
    if missing:
        raise ModelDirError(f"{where} is not a model_info.json of this project (no {', '.join(missing)})")
    for field, (check, what) in FIELDS.items():
        if field in info and not check(info[field]):
            raise ModelDirError(f"{where}: {field} must be {what}, got {json.dumps(info[field])[:80]}")
    if "preprocessing" in info:
        check_preprocessing(info["preprocessing"], where)
    return info


def check_preprocessing(block: Any, where: str) -> dict[str, Any]:
    """A "preprocessing" block (model_info.json or a dataset manifest): the TextSpec fields have their types."""
    if not isinstance(block, dict):
        raise ModelDirError(f"{where}: preprocessing must be an object, got {json.dumps(block)[:80]}")
    for field in ("lowercase", "strip_html"):
        if field in block and not isinstance(block[field], bool):
            raise ModelDirError(
                f"{where}: preprocessing.{field} must be true or false, got {json.dumps(block[field])[:80]}"
            )
    for field in ("whitespace", "tokenizer"):
        if field in block and not isinstance(block[field], str):
            raise ModelDirError(f"{where}: preprocessing.{field} must be a string, got {json.dumps(block[field])[:80]}")
    if "reserved_tokens" in block and not _string_list(block["reserved_tokens"]):
        raise ModelDirError(f"{where}: preprocessing.reserved_tokens must be a list of strings")
    return block


def read_model_info(model_dir: str, required: Iterable[str] = ()) -> dict[str, Any] | None:
    """MODEL_DIR/model_info.json checked (None if there is none); ModelDirError if it is not valid."""
    path = os.path.join(model_dir, names.MODEL_INFO_FILE)
    if not os.path.isfile(path):
        return None
    inside(model_dir, names.MODEL_INFO_FILE, path)
    try:
        with open(path, "rb") as handle:
            info = json.loads(handle.read().decode("utf-8"))
    except (ValueError, OSError) as error:
        raise ModelDirError(f"cannot read {path}: {error}") from None
    return check_model_info(info, path, required)


def inside(model_dir: str, name: str, where: str) -> str:
    """MODEL_DIR/name, if `name` is a relative path that stays in the directory (symlinks followed, local paths)."""
    if not name or os.path.isabs(name) or "://" in name or ".." in name.replace("\\", "/").split("/"):
        raise ModelDirError(f"{where}: {name!r} is not a file name inside the model directory")
    path = f"{model_dir.rstrip('/')}/{name}"
    if "://" not in model_dir:
        root = os.path.realpath(model_dir)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise ModelDirError(f"{where}: {name} points outside the model directory ({os.path.realpath(path)})")
    return path


def check_vocabulary(
    text_bytes: bytes, where: str, size: int | None = None, reserved: Iterable[str] | None = None
) -> list[tuple[str, int]]:
    """[(token, count)] of a vocab.tsv's bytes: UTF-8, 'token<TAB>count' lines, the reserved tokens first, `size` lines."""
    from textprep.vocabulary import parse_vocabulary

    try:
        rows = parse_vocabulary(text_bytes.decode("utf-8"), where)
    except UnicodeDecodeError as error:
        raise ModelDirError(f"{where} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    reserved = tuple(reserved or ())
    tokens = tuple(token for token, _ in rows[: len(reserved)])
    if reserved and tokens != reserved:
        raise ModelDirError(f"{where} starts with {list(tokens)}, but the model reserves {list(reserved)}")
    if size is not None and len(rows) != size:
        raise ModelDirError(
            f"{where} has {len(rows)} tokens but the model was trained with {size}: "
            "the vocabulary does not belong to this model"
        )
    return rows
