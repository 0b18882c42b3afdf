"""The bare loops of bench.generation agree with the pipelines on a tiny character LM.

The loops are written without project code, so these tests are also an independent check
of the pipelines: the generation pipeline's per-row seeds make its texts reproducible
whatever the batching, and the LM scoring pipeline's nats per token are the model's.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from bench import generation as bench_generation
from pipelines import generate, ingest, score
from tests.loop_imports import assert_imports_only

SHAKESPEARE = bench_generation.SHAKESPEARE
TINY_LM_FLAGS = [
    "--embedding_dim", "16", "--lstm_units", "32", "--num_layers", "1", "--epochs", "1", "--steps_per_epoch", "8",
    "--batch_size", "8", "--sequence_length", "32", "--validation_tokens", "1000", "--verbose", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    from lstm_model import train

    if not SHAKESPEARE.is_file():
        pytest.fail(f"tiny Shakespeare is missing at {SHAKESPEARE} (see ../shared/data/README.md)")
    folder = tmp_path_factory.mktemp("gen_corpus")
    (folder / "input.txt").write_text(SHAKESPEARE.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    dataset = tmp_path_factory.mktemp("gen_dataset")
    ingest.run(["--input", str(folder / "input.txt"), *bench_generation.LM_INGEST_FLAGS, "--output_dir", str(dataset)])
    model = tmp_path_factory.mktemp("gen_model")
    train.run(["--dataset_dir", str(dataset), "--model_dir", str(model), "--overwrite", *TINY_LM_FLAGS])
    return model


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory) -> Path:
    """Corpus lines with a blank line and mixed line ends: the loop must number them as the pipeline does."""
    lines = [line for line in SHAKESPEARE.read_text(encoding="utf-8").split("\n") if line.strip()][:60]
    body = "\n".join(lines[:20]) + "\n\n" + "\r\n".join(lines[20:40]) + "\r\n" + "\n".join(lines[40:]) + "\n"
    path = tmp_path_factory.mktemp("gen_inputs") / "lines.txt"
    path.write_bytes(body.encode("utf-8"))
    return path


def test_row_seed_is_the_pipelines_formula():
    for base, row_id in ((0, "a.txt:1"), (1, "prompts.txt:1024"), (-5, "x:7"), (2**40, "é.txt:3")):
        assert bench_generation.row_seed(base, row_id) == generate.row_seed(base, row_id)


def test_loops_use_no_project_code():
    """The loop functions import only TensorFlow, tensorflow_text, NumPy and pyarrow (plus the standard library)."""
    module_level = ast.parse(inspect.getsource(bench_generation))
    top_imports = {
        alias.name.split(".")[0]
        for node in module_level.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert top_imports <= {"__future__", "argparse", "hashlib", "json", "os", "re", "sys", "time", "pathlib"}
    loop_functions = (
        bench_generation.generate_loop,
        bench_generation.score_loop,
        bench_generation.read_lines,
        bench_generation.load_signature,
        bench_generation.read_parquet_rows,
        bench_generation.write_parquet,
        bench_generation.compare_generated,
        bench_generation.compare_scored,
    )
    assert_imports_only(loop_functions)


def test_comparison_reports_where_texts_differ():
    row = {"prompt": "p", "generated_text": "abcdef", "num_tokens": 6, "log_prob": -3.0, "seed": 1}
    other = {**row, "generated_text": "abcXef"}
    result = bench_generation.compare_generated({"f:1": row, "f:2": row}, {"f:1": row, "f:2": other})
    assert result["equal_texts"] == 1 and not result["all_equal"]
    assert result["mismatches"][0]["id"] == "f:2" and result["mismatches"][0]["first_difference_at"] == 3


@pytest.mark.slow
def test_generate_loop_texts_equal_the_pipelines(tiny_lm, lines_file, tmp_path):
    out = tmp_path / "generated"
    sampling = ["--max_new_tokens", "30", "--temperature", "0.8", "--seed", "7"]
    manifest = generate.run(
        ["--input", str(lines_file), "--model_dir", str(tiny_lm), "--output_dir", str(out), "--allow_unblessed"]
        + ["--batch_size", "16", *sampling]
    )
    assert manifest["counts"]["generated"] == 60 and manifest["counts"]["quarantined"] == 1  # the blank line
    result_json = tmp_path / "loop.json"
    # Batches of 7 in the loop, up to 16 in the pipeline: a row's text must not depend on its batch.
    argv = ["generate-loop", "--prompts", str(lines_file), "--model_dir", str(tiny_lm), "--result_json"]
    argv += [str(result_json), "--batch_size", "7", *sampling, "--compare_parquet", str(out)]
    assert bench_generation.main(argv) == 0
    result = json.loads(result_json.read_text())
    comparison = result["comparison"]
    assert comparison["compared"] == 60 and comparison["seeds_equal"], comparison
    assert comparison["all_equal"] and comparison["equal_texts"] == 60, comparison
    assert result["rows"] == 60 and result["rows_per_s"] > 0 and result["tokens_generated"] > 0


@pytest.mark.slow
def test_score_loop_nats_equal_the_pipelines(tiny_lm, lines_file, tmp_path):
    out = tmp_path / "scored"
    score.run(
        ["--input", str(lines_file), "--input_format", "lines", "--model_dir", str(tiny_lm), "--output_dir", str(out)]
        + ["--allow_unblessed"]
    )
    result_json = tmp_path / "loop.json"
    argv = ["score-loop", "--texts", str(lines_file), "--model_dir", str(tiny_lm), "--result_json", str(result_json)]
    argv += ["--batch_size", "9", "--compare_parquet", str(out), "--output_parquet", str(tmp_path / "loop.parquet")]
    assert bench_generation.main(argv) == 0
    result = json.loads(result_json.read_text())
    comparison = result["comparison"]
    assert comparison["compared"] == 60 and comparison["within_tolerance"] == 60, comparison
    assert comparison["all_equal"] and comparison["max_abs_nats_per_token_difference"] <= 1e-4
    assert (tmp_path / "loop.parquet").is_file() and result["rows_per_s"] > 0
