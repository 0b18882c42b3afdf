"""An independent ingest reference: one plain Python process, written without any project code.

    python -m bench.plain_ingest --input data/raw/aclImdb --output_dir /tmp/plain --result_json /tmp/plain.json

It imports only the standard library and TensorFlow (for tf.train.Example and the GZIP
TFRecord writer); `tests/test_bench.py` checks that. So it measures what the work of an ingest
costs in Python, not what the project's own functions cost (`bench.baselines ingest-loop` is
assembled from those and is exactly as fast or slow as they are).

The work, in one pass over the files and one over the kept texts:

* read every ``ROOT/{train,test}/{pos,neg,unsup}/ID_RATING.txt`` (UTF-8, bad bytes replaced);
* clean: HTML comments and tags to a space, ``html.unescape``, NFKC, control and zero-width
  characters to a space, format characters removed, lowercase, whitespace runs to one space,
  trimmed (the rules of `textprep.preprocessing`, in `re`/`html`/`unicodedata`);
* drop empty texts and exact duplicates of a cleaned text (test files first, so a text in
  train and test stays in test), carve 10 % of train into validation by a hash of the id;
* count tokens of train + unsup with one regex (words with inner apostrophes, or one other
  non-space character) in a `collections.Counter`; vocabulary = [PAD], [UNK] and the most
  frequent tokens seen at least twice, 30,000 in all;
* tokenize again, look the ids up, and write tf.train.Example (id, token_ids, label, length)
  to GZIP TFRecords, 10,000 records per shard, per split, plus vocab.tsv.

It does not hash inputs, quarantine with reasons, run row validation or sort shards: the project's
ingest does more, and the reference makes no claim to match its bytes.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import html
import json
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]{0,500}>", re.DOTALL)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b]+")
FORMAT = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200c-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]+"
)
WHITESPACE = re.compile(r"\s+")
TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
RESERVED = ("[PAD]", "[UNK]")
OOV_ID = 1
SPLIT_ORDER = ("test", "train")  # test first: a text in both stays in test
LABELS = {"neg": 0, "pos": 1, "unsup": -1}


def clean(raw: str) -> str:
    text = CONTROL.sub(" ", raw)
    text = html.unescape(TAG.sub(" ", text))
    text = unicodedata.normalize("NFKC", text)
    text = FORMAT.sub("", CONTROL.sub(" ", text)).lower()
    return WHITESPACE.sub(" ", text).strip()


def list_files(root: Path) -> list[tuple[str, str, Path]]:
    """(split, label folder, path) of every review file, test first, sorted inside a folder."""
    files = []
    for split in SPLIT_ORDER:
        for label in ("neg", "pos", "unsup"):
            folder = root / split / label
            if folder.is_dir():
                files += [(split, label, path) for path in sorted(folder.iterdir()) if path.suffix == ".txt"]
    return files


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    stages: dict[str, float] = {}
    import tensorflow as tf  # counted: writing tf.train.Example is part of the work

    mark = time.perf_counter()
    stages["import_tensorflow"] = mark - started
    root = Path(args.input)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. read, clean, drop empty texts and duplicates, split
    records = []  # (split, id, label, cleaned text)
    seen: set[str] = set()
    files = 0
    for split, label_folder, path in list_files(root):
        files += 1
        text = clean(path.read_bytes().decode("utf-8", errors="replace"))
        if not text or text in seen:
            continue
        seen.add(text)
        record_id = f"{split}/{label_folder}/{path.name}"
        if label_folder == "unsup":
            final_split = "unsup"
        elif split == "train" and hashlib.sha256(record_id.encode()).digest()[0] < 26:  # ~10 %
            final_split = "validation"
        else:
            final_split = split
        records.append((final_split, record_id, LABELS[label_folder], text))
    del seen
    stages["read_clean_dedupe"], mark = time.perf_counter() - mark, time.perf_counter()

    # 2. vocabulary from train + unsup
    counts: collections.Counter = collections.Counter()
    for split, _, _, text in records:
        if split in ("train", "unsup"):
            counts.update(TOKEN.findall(text))
    frequent = sorted(((-n, token) for token, n in counts.items() if n >= args.min_count))
    vocabulary = list(RESERVED) + [token for _, token in frequent[: args.vocab_size - len(RESERVED)]]
    ids = {token: i for i, token in enumerate(vocabulary)}
    (out / "vocab.tsv").write_text(
        "".join(f"{token}\t{counts.get(token, 0)}\n" for token in vocabulary), encoding="utf-8"
    )
    stages["count_vocabulary"], mark = time.perf_counter() - mark, time.perf_counter()

    # 3. ids -> tf.train.Example -> GZIP TFRecords, per split, in shards
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    by_split: dict[str, list] = collections.defaultdict(list)
    for record in records:
        by_split[record[0]].append(record)
    written = 0
    tokens = 0
    for split, rows in sorted(by_split.items()):
        (out / split).mkdir(exist_ok=True)
        num_shards = max(1, -(-len(rows) // args.records_per_shard))
        for shard in range(num_shards):
            path = out / split / f"data-{shard:05d}-of-{num_shards:05d}.tfrecord.gz"
            with tf.io.TFRecordWriter(str(path), options) as writer:
                for _, record_id, label, text in rows[shard::num_shards]:
                    token_ids = [ids.get(token, OOV_ID) for token in TOKEN.findall(text)]
                    tokens += len(token_ids)
                    example = tf.train.Example(
                        features=tf.train.Features(
                            feature={
                                "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[record_id.encode()])),
                                "token_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=token_ids)),
                                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                                "length": tf.train.Feature(int64_list=tf.train.Int64List(value=[len(token_ids)])),
                            }
                        )
                    )
                    writer.write(example.SerializeToString())
                    written += 1
    stages["ids_examples_write"] = time.perf_counter() - mark
    return {
        "files": files,
        "records_out": written,
        "tokens": tokens,
        "vocabulary_size": len(vocabulary),
        "stage_s": {name: round(seconds, 2) for name, seconds in stages.items()},
        "loop_s": round(time.perf_counter() - started, 2),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="aclImdb folder.")
    parser.add_argument("--output_dir", required=True, help="Where to write the TFRecords and vocab.tsv.")
    parser.add_argument("--result_json", default=None, help="Where to write counts and stage timings.")
    parser.add_argument("--vocab_size", type=int, default=30_000)
    parser.add_argument("--min_count", type=int, default=2)
    parser.add_argument("--records_per_shard", type=int, default=10_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    result = run(args)
    if args.result_json:
        Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.result_json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
