"""The bare loop of bench.translation agrees with the translation pipeline, and the harness reports it.

The loop is written without project code, so its run is also an independent check of the
pipeline: beam search is deterministic and a row's translation never depends on its batch, so
length-sorted calls, file-order calls and the pipeline's RunInference batches all give the same rows.
"""

from __future__ import annotations

import ast
import inspect
import json

import pytest

from bench import generation as bench_generation
from bench import translation as bench_translation
from tests.loop_imports import assert_imports_only


def test_loop_uses_no_project_code():
    """translate-loop imports TensorFlow, pyarrow and bench.generation's loop helpers only (plus the stdlib)."""
    tree = ast.parse(inspect.getsource(bench_translation))
    top = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert top <= {"__future__", "argparse", "gzip", "json", "os", "sys", "time", "pathlib", "bench.generation"}
    helpers = (
        bench_generation.read_lines,
        bench_generation.load_signature,
        bench_generation.read_parquet_rows,
        bench_generation.write_parquet,
        bench_generation.rows_by_id,
    )
    assert_imports_only((bench_translation.translate_loop, bench_translation.compare_translated, *helpers))


def test_comparison_names_the_rows_that_differ():
    row = {"translation": "A man.", "num_tokens": 3, "log_prob": -2.0}
    result = bench_translation.compare_translated(
        {"f:1": row, "f:2": row, "f:3": row}, {"f:1": row, "f:2": {**row, "translation": "A dog."}}
    )
    assert result["compared"] == 2 and result["equal_translations"] == 1 and not result["all_equal"]
    assert result["only_in_loop_count"] == 1
    assert result["mismatches"] == [{"id": "f:2", "loop": "A man.", "pipeline": "A dog."}]


@pytest.mark.bench  # about 2 minutes: make bench-check, not make test
def test_quick_run_translates_like_the_loops_and_reports(tmp_path):
    if not (bench_translation.MULTI30K / "train.de.gz").is_file():
        pytest.fail(f"Multi30k is missing at {bench_translation.MULTI30K} (see ../shared/data/README.md)")
    work = tmp_path / "work"
    results = bench_translation.main(["run", "--quick", "--work_dir", str(work)])
    assert results == 0
    saved = json.loads((work / "results.json").read_text())
    bench = saved["benchmarks"]["translation"]
    figures = {f["figure"]: f for f in bench["figures"]}
    assert len(figures) == 4 and all(f["status"] in ("PASS", "MISS", "info") for f in figures.values())
    for order in ("length", "file"):
        result = bench["loops"][order]["result"]
        assert result["rows"] == bench_translation.SIZES["quick"] == bench["pipeline"]["translated"]
        assert result["comparison"]["all_equal"], result["comparison"]
    steps = [c["step"] for c in saved["commands"]]
    assert steps[-3:] == ["translate_pipeline", "translate_loop_length_order", "translate_loop_file_order"]
    assert "| translation |" in (work / "results.md").read_text()
