"""Get the default datasets onto local disk (raw data is never modified afterwards).

    python -m pipelines.datasets imdb --cache_dir data/raw   # prints the aclImdb folder
    python -m pipelines.datasets tinyshakespeare              # prints the path of input.txt

Where the IMDB data comes from, in order:
1. an already extracted ``CACHE_DIR/aclImdb`` (with its ``.complete`` marker);
2. the tarball ``../shared/data/imdb/aclImdb.tar.gz`` (or ``--tarball``), extracted;
3. the public download ``aclImdb_v1.tar.gz`` from the authors' page (Maas et al. 2011),
   checked against its published size and MD5 before extraction.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

from pipelines.common import UserError, main_with_user_errors

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # published checksum of aclImdb_v1.tar.gz
IMDB_BYTES = 84_125_825
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_IMDB_TARBALL = REPO_ROOT.parent / "shared" / "data" / "imdb" / "aclImdb.tar.gz"
SHARED_IMDB_MINI = REPO_ROOT.parent / "shared" / "data" / "imdb" / "mini" / "aclImdb"
# Tiny Shakespeare (karpathy/char-rnn's corpus, also nanoGPT's shakespeare_char): one 1.1 MB text file.
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"
SHAKESPEARE_BYTES = 1_115_394
SHARED_SHAKESPEARE = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def download(url: str, destination: Path, expected_md5: str, expected_bytes: int) -> Path:
    """Download `url` to `destination` and verify it; a mismatch deletes the file."""
    partial = destination.with_suffix(destination.suffix + ".partial")
    digest = hashlib.md5()  # noqa: S324 -- matching the published checksum, not security
    print(f"downloading {url} ({expected_bytes / 1e6:.0f} MB)", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:  # noqa: S310
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    size = partial.stat().st_size
    if size != expected_bytes or digest.hexdigest() != expected_md5:
        partial.unlink()
        raise UserError(f"download of {url} failed its checksum ({size} bytes, md5 {digest.hexdigest()})")
    partial.rename(destination)
    return destination


def extract(tarball: Path, cache_dir: Path) -> Path:
    """Extract an aclImdb tarball into cache_dir; returns cache_dir/aclImdb."""
    target = cache_dir / "aclImdb"
    marker = target / ".complete"
    if marker.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"extracting {tarball} -> {cache_dir}", file=sys.stderr)
    with tarfile.open(tarball) as archive:
        archive.extractall(cache_dir, filter="data")  # refuses absolute paths and links out
    if not (target / "train").is_dir():
        raise UserError(f"{tarball} did not contain aclImdb/train")
    marker.write_text(str(tarball) + "\n")
    return target


def imdb(cache_dir: Path, tarball: Path | None = None, allow_download: bool = True) -> Path:
    """Path of an extracted full aclImdb folder, extracting or downloading as needed."""
    target = cache_dir / "aclImdb"
    if (target / ".complete").exists():
        return target
    tarball = tarball or SHARED_IMDB_TARBALL
    if not tarball.exists():
        if not allow_download:
            raise UserError(f"no IMDB tarball at {tarball} and downloads are off")
        cache_dir.mkdir(parents=True, exist_ok=True)
        tarball = download(IMDB_URL, cache_dir / "aclImdb_v1.tar.gz", IMDB_MD5, IMDB_BYTES)
    return extract(tarball, cache_dir)


def tinyshakespeare(cache_dir: Path, allow_download: bool = True) -> Path:
    """Path of tiny Shakespeare's input.txt: ../shared's copy, else one downloaded into cache_dir and checked."""
    if SHARED_SHAKESPEARE.is_file():
        return SHARED_SHAKESPEARE
    target = cache_dir / "tinyshakespeare" / "input.txt"
    if target.is_file():
        return target
    if not allow_download:
        raise UserError(f"no tiny Shakespeare at {SHARED_SHAKESPEARE} or {target}, and downloads are off")
    target.parent.mkdir(parents=True, exist_ok=True)
    return download(SHAKESPEARE_URL, target, SHAKESPEARE_MD5, SHAKESPEARE_BYTES)


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.datasets", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dataset",
        choices=["imdb", "imdb-mini", "tinyshakespeare"],
        help="imdb: full 50k+50k; imdb-mini: the 1,496-file slice; tinyshakespeare: the 1.1 MB char-rnn corpus",
    )
    parser.add_argument(
        "--cache_dir",
        default=str(REPO_ROOT / "data" / "raw"),
        help="Where raw data is extracted (default: %(default)s).",
    )
    parser.add_argument(
        "--tarball", default=None, help="A local aclImdb tarball to use instead of ../shared or the download."
    )
    parser.add_argument("--no_download", action="store_true", help="Fail instead of downloading.")
    args = parser.parse_args(argv)
    if args.dataset == "imdb-mini":
        if not SHARED_IMDB_MINI.is_dir():
            raise UserError(f"{SHARED_IMDB_MINI} not found; use `imdb` for the full data set")
        print(SHARED_IMDB_MINI)
        return
    if args.dataset == "tinyshakespeare":
        print(os.fspath(tinyshakespeare(Path(args.cache_dir), allow_download=not args.no_download)))
        return
    tarball = Path(args.tarball) if args.tarball else None
    print(os.fspath(imdb(Path(args.cache_dir), tarball, allow_download=not args.no_download)))


if __name__ == "__main__":
    sys.exit(main_with_user_errors(run))
