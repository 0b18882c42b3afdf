"""Corpus scales for the growth figures: nested subsets of an aclImdb folder.

Scale ``k/4`` of a corpus holds every (4/k)-th file of the sorted file list (so
1/4 is a subset of 1/2, which is a subset of the whole, and every split and label
keeps its share). Subsets are folders of hard links to the original files (a
copy where links are impossible), in the same aclImdb layout, so a subset run
reads exactly the bytes the full run reads for those files. The "1x, 2x, 4x
the corpus" of the growth figures are the subsets 1/4, 1/2 and 1 of the corpus.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

SCALES = (Fraction(1, 4), Fraction(1, 2), Fraction(1))


def corpus_files(root: Path) -> list[Path]:
    """Every review file of an aclImdb folder (ROOT/SPLIT/LABEL/*.txt), sorted by relative path."""
    return sorted(root.glob("*/*/*.txt"), key=lambda path: path.relative_to(root).as_posix())


def scale_name(scale: Fraction) -> str:
    """x1, x2, x4 for whole multiples; x1_4 for a quarter."""
    return f"x{scale.numerator}" if scale.denominator == 1 else f"x{scale.numerator}_{scale.denominator}"


def make_subset(root: Path, scale: Fraction, target: Path) -> Path:
    """An aclImdb folder at `target` with the `scale` share of `root`'s files (hard links)."""
    if scale == 1:
        return root
    step = int(1 / scale)
    if Fraction(1, step) != scale:
        raise ValueError(f"scale must be 1/n, got {scale}")
    marker = target / ".complete"
    if marker.exists() and marker.read_text() == f"{root.resolve()} 1/{step}\n":
        return target
    if target.exists():
        shutil.rmtree(target)
    for index, path in enumerate(corpus_files(root)):
        if index % step:
            continue
        destination = target / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:  # another filesystem: copy
            shutil.copyfile(path, destination)
    marker.write_text(f"{root.resolve()} 1/{step}\n")
    return target


def corpus_size(root: Path) -> dict:
    """Files and bytes of an aclImdb folder."""
    files = corpus_files(root)
    return {"files": len(files), "bytes": sum(path.stat().st_size for path in files)}


def warm_page_cache(root: Path) -> int:
    """Read every file once so the first measured step does not pay for a cold disk; returns bytes read."""
    total = 0
    for path in corpus_files(root):
        total += len(path.read_bytes())
    return total
