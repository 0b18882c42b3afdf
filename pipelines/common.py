"""Small pieces shared by every pipeline: records, quarantine, hashing, paths, CLI errors.

Element shapes used across pipelines (plain dicts: picklable, runner-agnostic):

* RawRecord: {"id": str, "source": str, "split": str | None, "label": str | None,
  "text": bytes | str | None, "extra": dict[str, str], "label_expected": bool (optional)} -- what a reader yields.
* TextRecord: {"id", "source", "split", "label": int, "text": str, "extra"} --
  decoded and checked (label is an index into schemas.names.LABELS or UNLABELED).
* QuarantineRecord: {"id", "source", "stage", "reason", "detail", "excerpt"} --
  a record that did not reach an output, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from apache_beam.io.filesystems import FileSystems

from schemas.cli import UserError, main_with_user_errors, setup_logging  # noqa: F401 -- the pipelines' CLI plumbing

QUARANTINE_TAG = "quarantine"
INPUTS_TAG = "inputs"
EXCERPT_CHARS = 200  # raw text kept on a quarantine record, for a person to look at

LOGGER = logging.getLogger("lstm_pipeline")


def quarantine(record: dict[str, Any] | None, stage: str, reason: str, detail: str = "") -> dict[str, Any]:
    """Build a QuarantineRecord from whatever is known about the failing record."""
    record = record or {}
    text = record.get("text")
    if isinstance(text, bytes):
        text = text[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    excerpt = "" if text is None else str(text)[:EXCERPT_CHARS]
    # Lone surrogates (undecodable bytes kept by surrogateescape) cannot be written as UTF-8.
    excerpt = excerpt.encode("utf-8", errors="replace").decode("utf-8")
    return {
        "id": str(record.get("id", "")),
        "source": str(record.get("source", "")),
        "stage": stage,
        "reason": reason,
        "detail": detail[:500],
        "excerpt": excerpt,
    }


def stable_fraction(key: str, salt: str = "") -> float:
    """A number in [0, 1) that depends only on `key` (same on every run and runner)."""
    digest = hashlib.sha256((salt + key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def stable_bucket(key: str, buckets: int) -> int:
    """Deterministic bucket in [0, buckets) for `key`."""
    return min(int(stable_fraction(key, salt="shard:") * buckets), buckets - 1)


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


def sha256_of_file(path: str, chunk_bytes: int = 1 << 20) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file on any Beam filesystem, read as stored."""
    from apache_beam.io.filesystem import CompressionTypes

    digest = hashlib.sha256()
    size = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def write_json(path: str, payload: Any) -> None:
    with FileSystems.create(path) as handle:
        handle.write((json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def read_json(path: str) -> Any:
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse to mix runs in one directory; with --overwrite remove the old run."""
    from schemas import names

    existing = [m.path for m in FileSystems.match([join(output_dir, "**")])[0].metadata_list]
    if not existing:
        return
    if not overwrite:
        has_manifest = exists(join(output_dir, names.MANIFEST_FILE))
        what = "a previous run (manifest.json)" if has_manifest else f"{len(existing)} files"
        raise UserError(f"--output_dir {output_dir} already holds {what}; pass --overwrite or choose another directory")
    LOGGER.info("removing %d files of the previous run in %s", len(existing), output_dir)
    FileSystems.delete(existing)


def describe_outputs(output_dir: str, files: list[tuple[str, int]]) -> dict[str, dict[str, Any]]:
    """{path relative to output_dir: {sha256, bytes, records}} for written files."""
    prefix = output_dir.rstrip("/") + "/"
    outputs = {}
    for path, records in sorted(files):
        sha256, size = sha256_of_file(path)
        outputs[path[len(prefix) :] if path.startswith(prefix) else path] = {
            "sha256": sha256,
            "bytes": size,
            "records": records,
        }
    return outputs


def add_encoding_flags(parser) -> None:
    """--encoding and --fallback_encoding (every pipeline that reads raw text)."""
    parser.add_argument("--encoding", default="utf-8", help="Encoding of raw text bytes (default: %(default)s).")
    parser.add_argument(
        "--fallback_encoding",
        default=None,
        help="Encoding tried when --encoding fails (e.g. cp1252); such records are kept and counted as repaired.",
    )


def check_encodings(args) -> None:
    """UserError naming the flag if --encoding or --fallback_encoding is not a codec Python knows."""
    for flag in ("encoding", "fallback_encoding"):
        codec = getattr(args, flag)
        try:
            if codec is not None:
                "".encode(codec)
        except LookupError:
            raise UserError(f"--{flag} {codec!r} is not a known codec") from None
