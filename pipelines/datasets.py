"""Get the default datasets onto local disk (raw data is never modified afterwards).

    python -m pipelines.datasets imdb --cache_dir data/raw   # prints the aclImdb folder
    python -m pipelines.datasets tinyshakespeare              # prints the path of input.txt
    python -m pipelines.datasets multi30k                     # prints the folder of the parallel files
    python -m pipelines.datasets multi30k-slice --lines 3000  # first lines of each file, for demos

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
# Multi30k task 1 (Elliott et al. 2016), raw (untokenized) gzip files of github.com/multi30k/dataset;
# sizes and MD5s are those of the copies in ../shared/data/multi30k.
SHARED_MULTI30K = REPO_ROOT.parent / "shared" / "data" / "multi30k"
MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{name}"
MULTI30K_FILES = {
    "train.de.gz": ("81ff90b99829c0cd4b1b587d394afd39", 637_044),
    "train.en.gz": ("0065d13af80720a55ca8153d126e6627", 568_929),
    "val.de.gz": ("6e0e229eb049e3fc99a1ef02fb2d5f91", 24_681),
    "val.en.gz": ("2b69aa9253948ac9f67e94917272dd40", 21_650),
    "test_2016_flickr.de.gz": ("efd67d314d98489b716b145475101932", 22_890),
    "test_2016_flickr.en.gz": ("ff2c0fcb4893a13bd73414306bc250ae", 21_077),
}


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


def multi30k(cache_dir: Path, allow_download: bool = True) -> Path:
    """Folder with Multi30k's de/en train, val and test_2016_flickr files: ../shared's, else downloaded and checked."""
    if all((SHARED_MULTI30K / name).is_file() for name in MULTI30K_FILES):
        return SHARED_MULTI30K
    target = cache_dir / "multi30k"
    missing = [name for name in MULTI30K_FILES if not (target / name).is_file()]
    if missing and not allow_download:
        raise UserError(f"no Multi30k at {SHARED_MULTI30K} or {target}, and downloads are off")
    target.mkdir(parents=True, exist_ok=True)
    for name in missing:
        md5, size = MULTI30K_FILES[name]
        download(MULTI30K_URL.format(name=name), target / name, md5, size)
    return target


def multi30k_slice(source: Path, cache_dir: Path, lines: int) -> Path:
    """The first `lines` pairs of train and lines // 10 of val and test, as gzip files in CACHE_DIR/multi30k_slice."""
    import gzip

    target = cache_dir / "multi30k_slice"
    target.mkdir(parents=True, exist_ok=True)
    for name in MULTI30K_FILES:
        keep = lines if name.startswith("train") else max(lines // 10, 1)
        with gzip.open(source / name, "rb") as handle:
            data = b"".join(line for _, line in zip(range(keep), handle, strict=False))
        # mtime=0: the same bytes on every run, so the slice's inputs.tsv checksums do not change.
        (target / name).write_bytes(gzip.compress(data, mtime=0))
    return target


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.datasets", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dataset",
        choices=["imdb", "imdb-mini", "tinyshakespeare", "multi30k", "multi30k-slice"],
        help="imdb: full 50k+50k; imdb-mini: the 1,496-file slice; tinyshakespeare: the 1.1 MB char-rnn corpus; "
        "multi30k: de-en sentence pairs (29k train); multi30k-slice: its first --lines pairs",
    )
    parser.add_argument(
        "--lines", type=int, default=3000, help="multi30k-slice: training pairs kept (default: %(default)s)."
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
    if args.dataset in ("multi30k", "multi30k-slice"):
        folder = multi30k(Path(args.cache_dir), allow_download=not args.no_download)
        if args.dataset == "multi30k-slice":
            if args.lines < 10:
                raise UserError(f"--lines must be >= 10, got {args.lines}")
            folder = multi30k_slice(folder, Path(args.cache_dir), args.lines)
        print(os.fspath(folder))
        return
    if args.dataset == "tinyshakespeare":
        print(os.fspath(tinyshakespeare(Path(args.cache_dir), allow_download=not args.no_download)))
        return
    tarball = Path(args.tarball) if args.tarball else None
    print(os.fspath(imdb(Path(args.cache_dir), tarball, allow_download=not args.no_download)))


if __name__ == "__main__":
    sys.exit(main_with_user_errors(run))
