"""Bulk inference plumbing shared by scoring and generation: the model directory checks and the model handler.

One generic RunInference handler calls a named signature of the exported SavedModel on
batches of raw strings (the model cleans, tokenizes and looks up itself, exactly as in
training); a task's post-processing DoFn turns its outputs into rows (Beam's pattern in
apache_beam/examples/inference: one model handler wrapped in KeyedModelHandler, then
a task-specific DoFn).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from lstm_model import model_dir as model_info
from pipelines import common, sources, transforms
from schemas import names
from schemas.cli import UserError

LOGGER = logging.getLogger("lstm_pipeline")


def length_sorted_calls(texts: Sequence[str], size: int) -> list[list[int]]:
    """Indices of `texts` cut into model calls of `size` texts of similar length (0 or >= len: one call).

    A model call pads every text to the longest one in it and the LSTM runs over the padding
    too; calls of texts sorted by characters (a proxy for tokens) cut the padded steps.
    """
    if not 0 < size < len(texts):
        return [list(range(len(texts)))] if texts else []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start : start + size] for start in range(0, len(order), size)]


class LoadedSignature:
    """One signature of an exported SavedModel, called with numpy arrays and answering numpy arrays.

    It keeps the loaded SavedModel alive (a bare signature function loses its variables once the
    SavedModel object is collected), and numpy in and out is what Beam's multi-process shared model
    (`--large_model`) can send between the worker processes and the process that holds the model.
    """

    def __init__(self, export_dir: str, signature: str):
        from lstm_model.export import load_exported

        self._loaded = load_exported(export_dir)
        common.exit_fast_in_sdk_worker()
        self._function = self._loaded.signatures[signature]
        self._dtypes = {name: spec.dtype for name, spec in self._function.structured_input_signature[1].items()}

    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        # Each input as the signature declares it (a Python float would otherwise become float64 in numpy).
        outputs = self._function(**{name: tf.constant(value, self._dtypes[name]) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}


class SignatureModelHandler(ModelHandler[str, PredictionResult, Any]):
    """RunInference handler for one signature of the exported SavedModel: a batch of raw strings per call.

    Example: str (raw text). Inference: {output key: Python scalar} for `output_keys`. The
    signature is called with its text input under `input_name` plus the fixed `arguments`
    (e.g. sampling settings), and `per_row` arguments computed from each text's batch
    position by `row_arguments(texts) -> {name: array [len(texts)]}` (e.g. per-row seeds).
    """

    def __init__(
        self,
        export_dir: str,
        signature: str,
        output_keys: Sequence[str],
        input_name: str = "text",
        arguments: dict[str, Any] | None = None,
        row_arguments: Callable[[Sequence[Any]], dict[str, Any]] | None = None,
        min_batch_size: int = 16,
        max_batch_size: int = 1024,
        bucket_size: int = 64,
        progress_name: str = "scored",
        large_model: bool = False,
    ):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.export_dir = export_dir
        self.signature = signature
        self.output_keys = tuple(output_keys)
        self.input_name = input_name
        self.arguments = dict(arguments or {})
        self.row_arguments = row_arguments
        # Texts per model call inside a batch (see length_sorted_calls); 0 = the whole batch in one call.
        self.bucket_size = bucket_size
        self.progress_name = progress_name
        # One model per worker VM, shared by its SDK processes (Beam's multi-process shared model), instead
        # of one per process: for a GPU worker (one copy on the GPU) or a model too big to hold per process.
        self.large_model = large_model
        self._progress = None  # created on the worker, in run_inference

    def share_model_across_processes(self) -> bool:
        return self.large_model

    def load_model(self):
        return LoadedSignature(self.export_dir, self.signature)

    def run_inference(self, batch: Sequence[Any], model, inference_args=None) -> Iterable[PredictionResult]:
        import numpy as np

        examples = list(batch)
        if not examples:
            return []
        if self._progress is None:
            self._progress = transforms.ProgressLog(self.progress_name)
        self._progress.add(len(examples))
        texts = [e if isinstance(e, str) else e[0] for e in examples]
        fixed = dict(self.arguments)
        columns: dict[str, np.ndarray] = {}
        for rows in length_sorted_calls(texts, self.bucket_size):  # results go back in batch order
            per_row = self.row_arguments([examples[i] for i in rows]) if self.row_arguments else {}
            outputs = model.predict(
                {self.input_name: np.array([texts[i] for i in rows], dtype=object), **fixed, **per_row}
            )
            for key in self.output_keys:
                values = outputs[key]
                columns.setdefault(key, np.empty(len(texts), values.dtype))[rows] = values
        results = []
        for i, example in enumerate(examples):
            inference = {}
            for key in self.output_keys:
                value = columns[key][i]
                inference[key] = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value.item()
            results.append(PredictionResult(example, inference, self.export_dir))
        return results

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        return sum(len((e if isinstance(e, str) else e[0]).encode("utf-8")) for e in batch)

    def get_metrics_namespace(self) -> str:
        return "lstm_" + self.progress_name


def add_bulk_flags(parser, *, verb: str, what: str, input_format: str, text_column: str) -> None:
    """The flags every bulk-inference pipeline has: input, output, model, blessing, pass-through, columns, encodings."""
    parser.add_argument("--input", required=True, help=f"{what.capitalize()}: folder, file or glob (local or gs://).")
    parser.add_argument(
        "--input_format",
        default=input_format,
        choices=sources.FORMATS,
        help="Layout of --input (default: %(default)s).",
    )
    parser.add_argument("--model_dir", required=True, help="Trained model directory (from lstm_model.train).")
    parser.add_argument(
        "--output_dir", required=True, help="Directory for the Parquet output, quarantine and manifest."
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace a previous run in --output_dir.")
    parser.add_argument(
        "--allow_unblessed",
        action="store_true",
        help=f"{verb} with a model that is not blessed (see lstm_model.bless).",
    )
    parser.add_argument(
        "--passthrough_columns", default="", help="Comma-separated input columns copied to the output as strings."
    )
    parser.add_argument(
        "--text_column", default=text_column, help=f"Tabular inputs: the {what} column (default: %(default)s)."
    )
    parser.add_argument(
        "--id_column", default="id", help="Tabular inputs: id column; FILE:ROW if absent (default: %(default)s)."
    )
    parser.add_argument(
        "--large_model",
        action="store_true",
        help="Load one model per worker machine, shared by its processes, instead of one per process "
        "(Dataflow GPU workers: one copy on the GPU; or a model too big to hold once per process).",
    )
    common.add_encoding_flags(parser)


def passthrough_values(record: dict[str, Any], columns: Sequence[str]) -> dict[str, str | None]:
    """{column: value as a string, or None} of the input columns a user asked to carry into the output."""
    extra = record.get("extra") or {}
    values = {}
    for column in columns:
        value = extra.get(column, record.get(column))
        values[column] = None if value is None else str(value)
    return values


def load_model_info(model_dir: str) -> dict[str, Any]:
    """model_info.json of a trained model, checked for what bulk inference needs (UserError if not).

    Everything is checked before the model is loaded (see lstm_model.model_dir): the JSON's fields and
    their types, the task, file names staying inside the directory, and the vocabulary (UTF-8,
    'token<TAB>count' lines, the model's reserved tokens first, the recorded size).
    """
    from pipelines import tasks

    model_dir = model_dir.rstrip("/")
    info_path = common.join(model_dir, names.MODEL_INFO_FILE)
    if not common.exists(model_dir):
        raise UserError(f"--model_dir {model_dir} does not exist")
    if not common.exists(info_path):
        raise UserError(
            f"--model_dir {model_dir} has no {names.MODEL_INFO_FILE}: not a trained model directory (run make train)"
        )
    try:
        model_info.inside(model_dir, names.MODEL_INFO_FILE, info_path)
        with FileSystems.open(info_path) as handle:
            info_bytes = handle.read()
        info = json.loads(info_bytes.decode("utf-8"))
    except model_info.ModelDirError as error:
        raise UserError(str(error)) from None
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {info_path}: {error}") from None
    try:
        model_info.check_model_info(info, info_path, required=model_info.REQUIRED_FOR_INFERENCE)
        info.setdefault("task", names.TASK_CLASSIFICATION)  # models trained before tasks existed are classifiers
        if info["task"] not in tasks.available():
            raise model_info.ModelDirError(
                f"{info_path}: task {info['task']!r} is not one of {', '.join(tasks.available())}"
            )
        for name in (info.get("vocabulary_files") or {}).values():
            model_info.inside(model_dir, name, info_path)
        model_info.inside(model_dir, info.get("export_dir", names.MODEL_EXPORT_DIR), info_path)
    except model_info.ModelDirError as error:
        raise UserError(str(error)) from None
    if not common.exists(common.join(model_dir, names.MODEL_EXPORT_DIR, "saved_model.pb")):
        raise UserError(f"--model_dir {model_dir} has no exported model ({names.MODEL_EXPORT_DIR}/saved_model.pb)")
    vocab_path = common.join(model_dir, names.VOCAB_FILE)
    if not common.exists(vocab_path):
        raise UserError(f"--model_dir {model_dir} is missing its vocabulary ({names.VOCAB_FILE})")
    reserved = (info.get("preprocessing") or {}).get("reserved_tokens")
    if reserved is None:
        reserved = (
            names.GENERATIVE_RESERVED_TOKENS if info["task"] == names.TASK_LANGUAGE_MODEL else names.RESERVED_TOKENS
        )
    try:
        model_info.inside(model_dir, names.VOCAB_FILE, vocab_path)
        with FileSystems.open(vocab_path) as handle:
            model_info.check_vocabulary(handle.read(), vocab_path, info["vocabulary_size"], reserved)
    except ValueError as error:  # ModelDirError, or textprep's VocabularyError (a line that is not token<TAB>count)
        raise UserError(str(error)) from None
    info["_model_info_sha256"] = hashlib.sha256(info_bytes).hexdigest()
    return info


def check_blessing(model_dir: str, info: dict[str, Any], allow_unblessed: bool = False) -> bool:
    """True if MODEL_DIR/blessing.json blesses this model version; else UserError, or a warning with --allow_unblessed."""
    path = common.join(model_dir.rstrip("/"), names.MODEL_BLESSING_FILE)
    try:
        blessing = common.read_json(path) if common.exists(path) else None
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if blessing is not None and not isinstance(blessing, dict):
        raise UserError(f"{path} is not a blessing.json of this project (a JSON {type(blessing).__name__})")
    if blessing is None:
        problem = f"--model_dir {model_dir} has no {names.MODEL_BLESSING_FILE} (run python -m lstm_model.bless --model_dir {model_dir})"
    elif blessing.get("model_version") not in (None, info.get("model_version")):
        problem = f"{path} is for model {blessing.get('model_version')}, not {info.get('model_version')}"
    elif blessing.get("blessed") is True:
        return True
    else:
        problem = f"model in {model_dir} is not blessed ({blessing.get('reason', 'no reason recorded')})"
    if not allow_unblessed:
        raise UserError(f"{problem}; pass --allow_unblessed to use it anyway")
    LOGGER.warning("going on anyway (--allow_unblessed): %s", problem)
    return False
