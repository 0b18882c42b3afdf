"""--encoding auto: each file's encoding detected, used to decode it, and recorded in inputs.tsv and the manifest."""

from __future__ import annotations

import codecs

import pytest

from pipelines import ingest, sources
from pipelines.common import UserError

CP1252_TEXT = "Le café était crème brûlée – “superbe” … l’été, naïve.\n" * 20


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CP1252_TEXT.encode("cp1252"), "cp1252"),
        (CP1252_TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CP1252_TEXT.encode("utf-8"), "utf-8-sig"),
        (CP1252_TEXT.encode("utf-16"), "utf-16"),  # with its BOM
        (CP1252_TEXT.encode("utf-16-le"), "utf-16-le"),  # without
        ("Größe 😀".encode()[:-2], "utf-8"),  # a sample cut inside a multi-byte character
        (b"plain ascii", "utf-8"),
    ],
)
def test_detect_encoding(data, expected):
    encoding, confidence = sources.detect_encoding(data)
    assert encoding == codecs.lookup(expected).name
    assert 0.0 <= confidence <= 1.0


def test_auto_decodes_each_file_with_its_own_encoding(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["Le café était crème – “superbe”.", "Ein Bär läuft über die Straße.", "Naïve l’été… déjà vu."]
    # Detection needs more than a line or two: a short cp1252 sample also decodes as plausible cp1257.
    cp1252_lines = lines + [f"{i}: {line}" for i, line in enumerate(CP1252_TEXT.splitlines())]
    (raw / "a_cp1252.txt").write_bytes("\r\n".join(cp1252_lines).encode("cp1252"))
    (raw / "b_utf8_bom.txt").write_bytes(codecs.BOM_UTF8 + "\n".join(line.lower() for line in lines).encode("utf-8"))
    (raw / "c_utf16.txt").write_bytes("\n".join(line.upper() for line in lines).encode("utf-16"))
    out = tmp_path / "dataset"
    manifest = ingest.run(
        [
            "--task", "language_model", "--input", str(raw), "--input_format", "lines", "--encoding", "auto",
            "--tokenizer", "char", "--min_count", "1", "--validation_fraction", "0.34", "--output_dir", str(out),
        ]
    )  # fmt: skip
    # Every line decoded: nothing quarantined, nothing repaired, no replacement characters in the vocabulary.
    assert manifest["counts"]["balanced"] and manifest["counts"]["quarantined"] == 0
    assert manifest["repaired"] == {}
    vocab = (out / "vocab.tsv").read_text(encoding="utf-8")
    for character in "éèß“’àÄÉ":  # (NFKC cleaning turns … into ...)
        assert f"\n{character}\t" in vocab
    assert "\ufffd" not in vocab and "ą" not in vocab  # (cp1257's reading of cp1252's à)
    encodings = manifest["input_encodings"]
    by_name = {path.rsplit("/", 1)[-1]: found["encoding"] for path, found in encodings.items()}
    assert by_name == {"a_cp1252.txt": "cp1252", "b_utf8_bom.txt": "utf-8", "c_utf16.txt": "utf-16"}
    rows = [line.split("\t") for line in (out / "inputs.tsv").read_text().splitlines()]
    assert all(len(row) == 5 for row in rows)


def test_auto_is_accepted_and_other_unknown_codecs_are_one_line_errors(tmp_path):
    (tmp_path / "a.txt").write_text("x\n")
    with pytest.raises(UserError, match="not a known codec"):
        ingest.run(
            [
                "--input",
                str(tmp_path),
                "--input_format",
                "lines",
                "--encoding",
                "autox",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
