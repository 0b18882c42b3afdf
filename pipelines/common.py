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
import importlib
import importlib.abc
import json
import logging
import os
import sys
import time
from typing import Any

from apache_beam.io.filesystems import FileSystems

from schemas.cli import UserError, main_with_user_errors, setup_logging  # noqa: F401 -- the pipelines' CLI plumbing

QUARANTINE_TAG = "quarantine"
INPUTS_TAG = "inputs"
EXCERPT_CHARS = 200  # raw text kept on a quarantine record, for a person to look at
# In an output directory while a run is writing it; gone once its manifest.json is written (see prepare_output_dir).
RUN_MARKER_FILE = "_RUN_IN_PROGRESS.json"

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
    """Writes `payload` as JSON, whole or not at all: a kill mid-write leaves no truncated file at `path`."""
    temporary = path + ".tmp"
    with FileSystems.create(temporary) as handle:
        handle.write((json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))
    FileSystems.rename([temporary], [path])


def read_json(path: str) -> Any:
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Makes `output_dir` ready for a new run and marks it as a run in progress.

    The marker (RUN_MARKER_FILE) is written before any output and removed by `finish_output_dir`
    once manifest.json is written, so a directory holding the marker and no manifest is a run of
    these pipelines that did not finish (killed, or failed): it is cleared without --overwrite. A
    previous complete run (manifest.json), or files that are not ours (no marker), need --overwrite.
    """
    from schemas import names

    existing = _files_under(output_dir)
    marker = join(output_dir, RUN_MARKER_FILE)
    manifest = join(output_dir, names.MANIFEST_FILE)
    has_manifest = exists(manifest) if existing else False
    unfinished = bool(existing) and not has_manifest and exists(marker)
    if existing and not overwrite and not unfinished:
        what = "a previous run (manifest.json)" if has_manifest else f"{len(existing)} files that no run of ours left"
        raise UserError(f"--output_dir {output_dir} already holds {what}; pass --overwrite or choose another directory")
    # Marked first: a kill from here on leaves a directory the next run clears by itself.
    write_json(marker, {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()})
    if not existing:
        return
    if unfinished:
        LOGGER.info("clearing %d files of an unfinished run in %s (no manifest.json)", len(existing), output_dir)
    else:
        LOGGER.info("removing %d files of the previous run in %s", len(existing), output_dir)
    if has_manifest:  # the manifest goes first: it must never describe a half-deleted directory
        FileSystems.delete([manifest])
    _clear(output_dir, keep=marker)


def finish_output_dir(output_dir: str) -> None:
    """Removes the run-in-progress marker: called once manifest.json is written (the run completed)."""
    marker = join(output_dir, RUN_MARKER_FILE)
    if exists(marker):
        FileSystems.delete([marker])


def _files_under(directory: str) -> list[str]:
    return [m.path for m in FileSystems.match([join(directory, "**")])[0].metadata_list]


def _clear(directory: str, keep: str) -> None:
    """Deletes everything in `directory` but `keep` (local folders too, empty ones included)."""
    if "://" in directory:
        paths = [path for path in _files_under(directory) if path != keep]
    else:
        paths = [os.path.join(directory, name) for name in sorted(os.listdir(directory))]
        paths = [path for path in paths if os.path.abspath(path) != os.path.abspath(keep)]
    if paths:
        FileSystems.delete(paths)


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
    parser.add_argument(
        "--encoding",
        default="utf-8",
        help="Encoding of raw text bytes, or auto: detected per file (charset-normalizer; UTF-8 and BOMs first, "
        "ties between Western code pages go to cp1252), recorded in inputs.tsv (default: %(default)s).",
    )
    parser.add_argument(
        "--fallback_encoding",
        default=None,
        help="Encoding tried when --encoding fails (e.g. cp1252); such records are kept and counted as repaired.",
    )


def check_encodings(args) -> None:
    """UserError naming the flag if --encoding or --fallback_encoding is not a codec Python knows."""
    for flag in ("encoding", "fallback_encoding"):
        codec = getattr(args, flag)
        if flag == "encoding" and codec == "auto":
            continue
        try:
            if codec is not None:
                "".encode(codec)
        except LookupError:
            raise UserError(f"--{flag} {codec!r} is not a known codec") from None


_SDK_WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"
_worker_failed = False


def _in_sdk_worker() -> bool:
    """Whether this process is a Beam SDK worker (`python -m apache_beam.runners.worker.sdk_worker_main`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name == _SDK_WORKER_MAIN


def exit_fast_in_sdk_worker() -> None:
    """In a Beam SDK worker process, end it with os._exit once its harness has returned.

    Tearing down an interpreter that has loaded TensorFlow (and Great Expectations) costs 2-4 s of
    CPU; the local multi-process runner stops its workers one after the other, so that was ~7 s of
    one busy core at the end of every run. Call after importing either: the handler is (re-)registered
    to run first of the exit handlers. It flushes logging and the standard streams, and keeps the exit
    status (1 after an uncaught exception). Does nothing in any other process (launcher, tests,
    the in-process runner, training).
    """
    import atexit

    if not _in_sdk_worker():
        return
    if not getattr(sys.excepthook, "_records_failure", False):
        previous = sys.excepthook

        def excepthook(*exc_info):
            global _worker_failed
            _worker_failed = True
            previous(*exc_info)

        excepthook._records_failure = True
        sys.excepthook = excepthook
    atexit.unregister(_exit_now)
    atexit.register(_exit_now)


def _exit_now() -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(1 if _worker_failed else 0)


# Keras integrations that `import tensorflow` loads although no pipeline worker uses them: TensorFlow
# imports keras.src eagerly, which imports scikit-learn (keras.src.wrappers) and matplotlib.pyplot
# (keras.src.visualization); Keras sets them to None when they are missing. Leaving them out of a worker
# measured ~0.8 s of CPU and 30 MiB of PSS less per worker (docs/performance.md, issue 14, seventh round).
WORKER_SKIPPED_IMPORTS = ("sklearn", "matplotlib")


class _SkipImports(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages look not installed while it is on sys.meta_path."""

    def __init__(self, packages: tuple[str, ...]):
        self.packages = packages

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {name!r} (left out of this worker)", name=name)
        return None


def import_in_worker(module: str):
    """`importlib.import_module(module)` for a DoFn's setup, then `exit_fast_in_sdk_worker`.

    In a Beam SDK worker process that has not imported TensorFlow yet, the import runs without
    `WORKER_SKIPPED_IMPORTS`, which only Keras' optional integrations would load. They stay importable
    afterwards. Any other process (launcher, tests, the in-process runner, training) imports as usual.
    """
    skip = None
    if _in_sdk_worker() and "tensorflow" not in sys.modules:
        skip = _SkipImports(WORKER_SKIPPED_IMPORTS)
        sys.meta_path.insert(0, skip)
    try:
        imported = importlib.import_module(module)
    finally:
        if skip is not None:
            sys.meta_path.remove(skip)
    exit_fast_in_sdk_worker()
    return imported


MALLOC_ARENAS = 2  # glibc malloc arenas per pipeline process (see limit_malloc_arenas)
_M_ARENA_MAX = -8  # mallopt's parameter number for the arena cap, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> int | None:
    """Cap glibc's malloc arenas at `arenas` in this process and in the worker processes it starts.

    glibc gives each thread that meets a busy arena a new one, up to 8 per core, and an arena keeps
    the memory it has used; TensorFlow's thread pools in each SDK worker can fill 16 arenas on 2
    cores. Capped at 2, a full-corpus ingest peaked 100-143 MiB lower (PSS of all its processes, three
    interleaved pairs) in the same time (docs/performance.md, issue 14 sixth round). Bulk scoring
    measured the same with and without the cap, so only ingest applies it.

    Local SDK workers are new processes started with this process's environment, so they read
    MALLOC_ARENA_MAX when they start; this process applies it now with mallopt, before the runner
    starts its threads. A MALLOC_ARENA_MAX the user set is kept. Returns the cap applied, or None
    where the C library is not glibc (macOS, musl: no effect) or the variable is not a number.
    """
    import ctypes

    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    try:
        value = int(os.environ["MALLOC_ARENA_MAX"])
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- raises AttributeError where the C library is not glibc
        mallopt = libc.mallopt
    except (ValueError, OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return value if mallopt(_M_ARENA_MAX, value) == 1 else None


def memoize_option_views() -> None:
    """Make `PipelineOptions.view_as(cls)` return one view per options object and class.

    Beam asks for a view of the pipeline's options (TypeOptions, StandardOptions, ...) ~1,700 times
    while building ingest's graph, and every view parses the command line again with a new argparse
    parser holding every Beam option: ~1.3 s of the launcher's start. A view keeps no state of its own
    (its values live in the options' shared `_all_options`, which is why views see each other's
    changes), so one view per class answers the same. Kept weakly per options object.
    """
    import weakref

    from apache_beam.options.pipeline_options import PipelineOptions

    original = PipelineOptions.view_as
    if getattr(original, "memoized", False):
        return
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def view_as(self, cls):
        try:
            views = cache.setdefault(self, {})
        except TypeError:  # an options object that cannot be weakly referenced
            return original(self, cls)
        flags = tuple(self._flags) if self._flags is not None else None
        key = (cls, flags)  # the flags, too: a view is parsed from them
        if key not in views:
            views[key] = original(self, cls)
        return views[key]

    view_as.memoized = True
    view_as.__doc__ = original.__doc__
    PipelineOptions.view_as = view_as


def memoize_dofn_specs() -> None:
    """Make Beam compute each DoFn's state and timer specs once per DoFn object, not once per question.

    While a pipeline is built, translated and handed to the runner, Beam asks `userstate.get_dofn_specs`
    about every DoFn about ten times (is it stateful? has it timers?), and each answer inspects the
    signature of every method of the DoFn: ~2.5 s of the ~9 s the launcher spends before the workers
    start on ingest's 120 DoFns. The answer depends only on the DoFn's methods, so it is kept per
    DoFn object (weakly: gone with the DoFn). Beam's validation errors are raised as before (never cached).
    """
    import weakref

    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    if getattr(original, "memoized", False):
        return
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get_dofn_specs(dofn):
        try:
            return cache[dofn]
        except (KeyError, TypeError):  # TypeError: a DoFn that cannot be weakly referenced or hashed
            pass
        specs = original(dofn)
        try:
            cache[dofn] = specs
        except TypeError:
            pass
        return specs

    get_dofn_specs.memoized = True
    userstate.get_dofn_specs = get_dofn_specs
