"""A translation dataset directory written the way the ingest contract says, from aligned Multi30k files.

Used by the translation tests (and to build a full Multi30k dataset before `pipelines.ingest --task translation`
existed): cleaning, tokenization and lookup are textprep's, the records schemas.tfrecord's.

    python -m tests.translation_fixture OUT_DIR [TRAIN_LINES]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from schemas import names

MULTI30K = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "multi30k"
FILES = {names.SPLIT_TRAIN: "train", names.SPLIT_VALIDATION: "val", names.SPLIT_TEST: "test_2016_flickr"}


def read_lines(split: str, language: str, limit: int | None = None) -> list[str]:
    with gzip.open(MULTI30K / f"{FILES[split]}.{language}.gz", "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    lines = [line for line in lines if line.strip()] if lines[-1] == "" else lines
    return lines[:limit] if limit else lines


def write_dataset(
    out_dir: Path,
    limits: dict[str, int | None],
    vocab_size: int = 20000,
    min_count: int = 1,
    source_language: str = "de",
    target_language: str = "en",
) -> dict:
    import tensorflow as tf

    from schemas.tfrecord import serialize_example
    from textprep.preprocessing import CompiledLookup, TextSpec, clean_batch, count_tokens_batch
    from textprep.vocabulary import format_vocabulary, top_k_vocabulary

    spec = TextSpec(reserved_tokens=names.GENERATIVE_RESERVED_TOKENS)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = {}
    for split, limit in limits.items():
        source = clean_batch(read_lines(split, source_language, limit), spec)
        target = clean_batch(read_lines(split, target_language, limit), spec)
        pairs[split] = [(s, t) for s, t in zip(source, target, strict=True) if s and t]
    vocabularies, lookups = {}, {}
    for side, index, file in ((
        "source", 0, names.SOURCE_VOCAB_FILE), ("target", 1, names.TARGET_VOCAB_FILE)):  # fmt: skip
        counts = Counter()
        texts = [pair[index] for pair in pairs[names.SPLIT_TRAIN]]
        for start in range(0, len(texts), 4096):
            counts.update(count_tokens_batch(texts[start : start + 4096], spec))
        rows = top_k_vocabulary(counts, vocab_size, min_count, names.GENERATIVE_RESERVED_TOKENS)
        (out_dir / file).write_text(format_vocabulary(rows), encoding="utf-8")
        vocabularies[side] = {"file": file, "size": len(rows)}
        lookups[side] = CompiledLookup([token for token, _ in rows], spec)
    splits = {}
    for split, split_pairs in pairs.items():
        (out_dir / split).mkdir(exist_ok=True)
        path = out_dir / split / f"data-00000-of-00001{names.TFRECORD_SUFFIX}"
        source_ids = lookups["source"]([s for s, _ in split_pairs]) if split_pairs else []
        target_ids = lookups["target"]([t for _, t in split_pairs]) if split_pairs else []
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for number, ((s, t), s_ids, t_ids) in enumerate(zip(split_pairs, source_ids, target_ids, strict=True)):
                writer.write(
                    serialize_example(
                        {
                            names.FEATURE_ID: f"{split}-{number}",
                            names.FEATURE_SOURCE_IDS: s_ids,
                            names.FEATURE_TARGET_IDS: t_ids,
                            names.FEATURE_SOURCE_LENGTH: len(s_ids),
                            names.FEATURE_TARGET_LENGTH: len(t_ids),
                            names.FEATURE_SOURCE_TEXT: s,
                            names.FEATURE_TARGET_TEXT: t,
                        }
                    )
                )
        splits[split] = {"records": len(split_pairs)}
    fingerprint = hashlib.sha256(json.dumps([limits, vocab_size, min_count], sort_keys=True).encode()).hexdigest()
    manifest = {
        "task": names.TASK_TRANSLATION,
        "source_language": source_language,
        "target_language": target_language,
        "preprocessing": spec.to_dict(),
        "vocabularies": {**vocabularies, "joint": False},
        "splits": splits,
        "dataset_fingerprint": fingerprint,
    }
    (out_dir / names.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    train_lines = int(sys.argv[2]) if len(sys.argv) > 2 else None
    print(
        write_dataset(
            Path(sys.argv[1]),
            {names.SPLIT_TRAIN: train_lines, names.SPLIT_VALIDATION: None, names.SPLIT_TEST: None},
            min_count=2,
        )
    )
