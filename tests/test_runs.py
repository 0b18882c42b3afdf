"""The input list (inputs.tsv): written from sorted part files, never held whole in memory."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import runs

ROWS = [
    ("b/2.txt", "00ff", 12),
    ("a/10.txt", "aa11", 3),
    ("a/1.txt", "bb22", 7, "cp1252", 0.87),
    ("a", "cc33", 0),
    ("a/1.txt", "0000", 7),  # the same path matched twice: ordered by the next field
    ("é/ü.txt", "dd44", 5, "utf-8", 1.0),
]


def expected_tsv(rows) -> str:
    # Independent of the code under test: sort the tuples, join the fields with tabs.
    return "".join("\t".join(str(v) for v in row) + "\n" for row in sorted(rows))


def test_merge_of_parts_in_rounds_equals_sorting_all_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "PARTS_PER_MERGE", 2)  # 4 parts: one round of pairs, then the final merge
    parts_dir = tmp_path / "inputs-spill-x"
    parts = []
    for index in range(4):
        writer = runs.InputPartsDoFn(str(parts_dir), rows_per_part=10)
        writer.start_bundle()
        for row in ROWS[index::4] + [(f"z/{index}-{k}.txt", "ee", k) for k in range(3)]:
            assert list(writer.process(row)) == []
        parts += [window.value for window in writer.finish_bundle()]
    all_rows = ROWS + [(f"z/{i}-{k}.txt", "ee", k) for i in range(4) for k in range(3)]
    path, count = runs.merge_input_parts(parts, str(tmp_path / "inputs.tsv"), str(parts_dir))
    assert count == len(all_rows)
    assert (tmp_path / "inputs.tsv").read_text(encoding="utf-8") == expected_tsv(all_rows)
    assert not parts_dir.exists()  # parts and the round's merged parts deleted


def test_write_input_list_pipeline_writes_sorted_rows_and_counts_them(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "ROWS_PER_PART", 2)  # several parts per bundle
    with TestPipeline() as p:
        written = p | beam.Create(ROWS) | runs.WriteInputList(str(tmp_path))
        assert_that(written, equal_to([(str(tmp_path / "inputs.tsv"), len(ROWS))]))
    assert (tmp_path / "inputs.tsv").read_text(encoding="utf-8") == expected_tsv(ROWS)
    assert [p.name for p in tmp_path.iterdir()] == ["inputs.tsv"]  # no part left behind


def test_empty_input_list_is_an_empty_file(tmp_path):
    with TestPipeline() as p:
        written = p | beam.Create([]) | runs.WriteInputList(str(tmp_path))
        assert_that(written, equal_to([(str(tmp_path / "inputs.tsv"), 0)]))
    assert (tmp_path / "inputs.tsv").read_bytes() == b""
