"""Property-based fuzzing of the real ingest pipeline (Beam's local runner) over generated hostile inputs.

For every input format, hypothesis builds a folder of files from real text (IMDB, Shakespeare, Multi30k
lines) and random text, in random encodings, then damages them: random bytes, truncation (also in the
middle of a multi-byte character), NULs, byte order marks, mixed CRLF/CR/LF, very long lines, unbalanced
CSV quotes, deeply nested JSON. Each run must end without a traceback (exit 0, or exit 2 with one line)
and, whenever a manifest is written, with records in = records out + quarantined.

`make test` runs FUZZ_EXAMPLES=1 generated folder per format (each a whole pipeline run);
`make fuzz` runs 30.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines import ingest
from schemas.cli import main_with_user_errors

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1"))


def _real_lines() -> list[str]:
    lines = (SHARED / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()[:200]
    reviews = sorted((SHARED / "imdb" / "mini" / "aclImdb" / "train" / "pos").glob("*.txt"))[:5]
    lines += [path.read_text(encoding="utf-8") for path in reviews]
    lines += ["Ein kleines Mädchen klettert in ein Spielhaus aus Holz.", "Café crème – “déjà vu” … l’été", "Größe 😀"]
    return [line for line in lines if line.strip()]


REAL = _real_lines()
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]
texts = st.one_of(st.sampled_from(REAL), st.text(min_size=0, max_size=200))


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """`data` with zero or more kinds of damage."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["bytes", "truncate", "nul", "bom", "long", "none"]))
        if kind == "bytes":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:]
        elif kind == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "nul":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + b"\x00" * draw(st.integers(1, 5)) + data[at:]
        elif kind == "bom":
            data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + data
        elif kind == "long":
            data += b"x" * draw(st.integers(10_000, 200_000))
    return data


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


@st.composite
def line_file(draw) -> bytes:
    lines = draw(st.lists(texts, min_size=0, max_size=8))
    ends = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines)))
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    return draw(damaged(_encode(text, draw(st.sampled_from(ENCODINGS)))))


@st.composite
def csv_file(draw) -> bytes:
    rows = ["id,text,label"]
    for i, text in enumerate(draw(st.lists(texts, min_size=0, max_size=8))):
        quoted = '"' + text.replace('"', '""') + '"'
        if draw(st.booleans()):
            quoted = quoted[:-1]  # an unbalanced quote
        rows.append(f"r{i},{quoted},{draw(st.sampled_from(['pos', 'neg', '', 'maybe']))}")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return draw(damaged(_encode(newline.join(rows) + newline, draw(st.sampled_from(ENCODINGS)))))


@st.composite
def jsonl_file(draw) -> bytes:
    lines = []
    for text in draw(st.lists(texts, min_size=0, max_size=8)):
        kind = draw(st.sampled_from(["ok", "ok", "nested", "not_object", "broken", "number"]))
        if kind == "ok":
            lines.append(json.dumps({"text": text}, ensure_ascii=draw(st.booleans())))
        elif kind == "nested":
            depth = draw(st.integers(1, 5000))
            lines.append('{"text": ' + "[" * depth + '"x"' + "]" * depth + "}")
        elif kind == "not_object":
            lines.append(json.dumps([text]))
        elif kind == "broken":
            lines.append('{"text": "' + text[:20])
        else:
            lines.append(json.dumps({"text": draw(st.integers())}))
    return draw(damaged(_encode("\n".join(lines) + "\n", draw(st.sampled_from(ENCODINGS)))))


@st.composite
def parquet_file(draw) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = draw(st.lists(st.one_of(texts, st.none()), min_size=0, max_size=8))
    column = (
        pa.array([None if v is None else v.encode("cp1252", errors="replace") for v in values], pa.binary())
        if draw(st.booleans())
        else pa.array(values, pa.string())
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": column}), buffer)
    data = buffer.getvalue()
    return data if draw(st.booleans()) else draw(damaged(data))


FILES = {
    "lines": ("language_model", line_file()),
    "text": ("language_model", line_file()),
    "csv": ("language_model", csv_file()),
    "jsonl": ("language_model", jsonl_file()),
    "parquet": ("language_model", parquet_file()),
}


def _run_ingest(folder: Path, input_format: str, task: str, extra: list[str] = ()) -> None:
    out = folder.parent / "out"
    argv = [
        "--task", task, "--input", str(folder), "--input_format", input_format, "--output_dir", str(out),
        "--encoding", "auto", "--validation_fraction", "0.5", "--min_count", "1", *extra,
    ]  # fmt: skip
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main_with_user_errors(ingest.run, argv)
    errors = [line for line in stderr.getvalue().splitlines() if line.startswith("error:")]
    assert code in (0, 2)
    if code == 2:
        assert len(errors) == 1, stderr.getvalue()[-2000:]
    manifest = out / "manifest.json"
    if manifest.exists():
        counts = json.loads(manifest.read_text())["counts"]
        assert counts["balanced"], counts
        assert counts["records_in"] == counts["documents_out"] + counts["quarantined"]
    elif code == 0:
        pytest.fail("exit 0 without a manifest")


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.mark.parametrize("input_format", sorted(FILES))
def test_ingest_survives_generated_files(input_format):
    task, strategy = FILES[input_format]

    @FUZZ_SETTINGS
    @given(st.lists(strategy, min_size=1, max_size=4))
    def check(files: list[bytes]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "raw"
            folder.mkdir()
            suffix = {"lines": ".txt", "text": ".txt"}.get(input_format, f".{input_format}")
            for i, data in enumerate(files):
                (folder / f"f{i}{suffix}").write_bytes(data)
            _run_ingest(folder, input_format, task)

    check()


@FUZZ_SETTINGS
@given(st.lists(st.tuples(line_file(), line_file()), min_size=1, max_size=2))
def test_translation_ingest_survives_generated_parallel_files(pairs):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "raw"
        folder.mkdir()
        for i, (source, target) in enumerate(pairs):
            (folder / f"part{i}.de").write_bytes(source)
            (folder / f"part{i}.en").write_bytes(target)
        _run_ingest(folder, "parallel", "translation", ["--source_language", "de", "--target_language", "en"])


@FUZZ_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["pos", "neg", "unsup", "odd"]), line_file()), min_size=1, max_size=6))
def test_aclimdb_ingest_survives_generated_reviews(reviews):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "aclImdb"
        for i, (label, data) in enumerate(reviews):
            split = "test" if i % 3 == 2 else "train"
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            name = f"{i}_7.txt" if i % 4 else f"bad-name-{i}.txt"
            (folder / split / label / name).write_bytes(data)
        _run_ingest(folder, "aclimdb", "classification")
