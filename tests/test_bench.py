"""The benchmark harness runs end to end in quick mode and writes well-formed results.

Benchmarks are not tests: nothing here asserts a timing or a PASS, only that the
harness measures all three benchmarks and reports them completely.
"""

import json
from fractions import Fraction

import pytest

from bench import corpus, report
from bench import run as bench_run

# The generation benchmark's harness has tests of its own (tests/test_bench_generation.py); here the
# classifier's three keep the quick run short.
BENCHMARKS = ("ingest", "train_input", "score")


def test_growth_figures_from_measurements():
    runs = {
        Fraction(1, 4): {"wall_s": 10.0, "peak_pss_mb": 1000.0},
        Fraction(1): {"wall_s": 44.0, "peak_pss_mb": 1030.0},
    }
    sizes = {Fraction(1, 4): {"bytes": 25 * 2**20}, Fraction(1): {"bytes": 125 * 2**20}}
    assert bench_run.linearity(runs) == {"x4": pytest.approx(1.1)}
    assert bench_run.memory_growth(runs, sizes) == pytest.approx(0.3)
    assert bench_run.figure("b", "f", 1, 2, 0.4, "<= 0.5", 0.5, higher=False)["status"] == "PASS"
    assert bench_run.figure("b", "f", 1, 2, 0.8, ">= 0.9", 0.9, higher=True)["status"] == "MISS"
    assert bench_run.figure("b", "f", 1, 2, None, ">= 0.9", 0.9, higher=True)["status"] == "n/a"


def test_subsets_are_nested_shares_of_the_corpus(mini_dir, tmp_path):
    half = corpus.make_subset(mini_dir, Fraction(1, 2), tmp_path / "half" / "aclImdb")
    quarter = corpus.make_subset(mini_dir, Fraction(1, 4), tmp_path / "quarter" / "aclImdb")
    names = {
        scale: {p.relative_to(root) for p in corpus.corpus_files(root)}
        for scale, root in ((1, mini_dir), (2, half), (4, quarter))
    }
    assert len(names[2]) == -(-len(names[1]) // 2) and len(names[4]) == -(-len(names[1]) // 4)
    assert names[4] <= names[2] <= names[1]
    assert {p.parts[:2] for p in names[4]} == {p.parts[:2] for p in names[1]}  # every split/label folder kept


@pytest.mark.bench  # about 2.5 minutes: make bench-check, not make test
def test_quick_run_writes_json_and_markdown_for_all_benchmarks(mini_dir, mini_model, tmp_path):
    out = tmp_path / "report"
    # The session's tiny model stands in for the one the harness would train (saves ~20 s).
    argv = ["--quick", "--input", str(mini_dir), "--work_dir", str(tmp_path / "work"), "--out_dir", str(out)]
    bench_run.run([*argv, "--model_dir", str(mini_model), "--only", ",".join(BENCHMARKS)])
    results = json.loads((out / report.JSON_FILE).read_text())
    assert results["mode"] == "quick"
    assert set(results["benchmarks"]) == set(BENCHMARKS)
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["memory_gib"] > 0 and machine["cpu_model"]
    assert {"python", "apache-beam", "tensorflow"} <= set(machine["versions"])
    for name in BENCHMARKS:
        figures = results["benchmarks"][name]["figures"]
        assert figures, name
        for figure in figures:
            assert figure["goal"] and figure["status"] in ("PASS", "MISS", "n/a", "info"), figure
            assert figure["status"] == "n/a" or figure["ratio"] > 0, figure
    assert results["benchmarks"]["ingest"]["same_outputs_as_loop"] is True
    steps = {command["step"] for command in results["commands"]}
    assert {"ingest_pipeline_x1", "ingest_loop", "train_input", "score_loop", "score_pipeline_x1"} <= steps
    assert (tmp_path / "work" / "logs" / "ingest_loop.log").exists()
    for command in results["commands"]:
        assert command["wall_s"] > 0 and command["peak_pss_mb"] > 0 and command["command"].startswith("python -m ")
    markdown = (out / report.MARKDOWN_FILE).read_text()
    for heading in ("## Machine", "## Figures", "## Commands"):
        assert heading in markdown
    for name in BENCHMARKS:
        assert f"| {name} |" in markdown
    assert "PASS" in markdown or "MISS" in markdown


def test_plain_ingest_reference_uses_no_project_code(mini_dir, tmp_path):
    """bench/plain_ingest.py imports only the standard library and TensorFlow, and writes every kept review."""
    import ast
    import sys

    from bench import plain_ingest

    tree = ast.parse(open(plain_ingest.__file__).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - {"tensorflow", "__future__"} <= set(sys.stdlib_module_names), imported
    result = plain_ingest.run(
        plain_ingest.build_parser().parse_args(["--input", str(mini_dir), "--output_dir", str(tmp_path / "plain")])
    )
    assert result["files"] == len(corpus.corpus_files(mini_dir))
    assert 0 < result["records_out"] <= result["files"] and result["vocabulary_size"] > 2
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "test",
        "train",
        "unsup",
        "validation",
        "vocab.tsv",
    ]


def test_tf_transform_reference_reports_why_it_is_unavailable(tmp_path):
    args = bench_run.build_parser().parse_args(["--quick", "--work_dir", str(tmp_path)])
    assert bench_run.tft_unavailable_reason(bench_run.Harness(args)).startswith("skipped in --quick")
    args = bench_run.build_parser().parse_args(["--no_tft", "--work_dir", str(tmp_path)])
    assert bench_run.tft_unavailable_reason(bench_run.Harness(args)) == "skipped (--no_tft)"


def test_repeated_runs_are_summarised_by_medians_of_back_to_back_pairs():
    runs = [{"wall_s": 60.0, "cpu_s": 90.0, "peak_pss_mb": 1900.0, "step": "a"},
            {"wall_s": 74.0, "cpu_s": 108.0, "peak_pss_mb": 1907.0, "step": "b"},
            {"wall_s": 74.0, "cpu_s": 109.0, "peak_pss_mb": 1903.0, "step": "c"}]  # fmt: skip
    references = [{"wall_s": 62.5}, {"wall_s": 65.0}, {"wall_s": 61.0}]
    summary = bench_run.median_run(runs)
    assert (summary["wall_s"], summary["cpu_s"], summary["peak_pss_mb"], summary["repeats"]) == (74.0, 108.0, 1903.0, 3)
    # Each run is compared with the reference run right after it, not with the median reference:
    # 60/62.5 = 0.96, 74/65 = 1.138, 74/61 = 1.213 -> 1.138 (the ratio of the medians would be 74/62.5 = 1.184).
    assert bench_run.paired_ratio(runs, references, "wall_s") == pytest.approx(74 / 65)
    with pytest.raises(ValueError):
        bench_run.paired_ratio(runs, references[:2], "wall_s")
