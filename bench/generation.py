"""Benchmarks for bulk generation and bulk language-model scoring against bare loops.

    python -m bench.generation run --work_dir data/bench_generation [--quick]
    python -m bench.generation generate-loop --prompts FILE --model_dir DIR --result_json FILE \\
        [--batch_size 64 --max_new_tokens 100 --temperature 0.8 --seed 1 --compare_parquet PIPELINE_OUT]
    python -m bench.generation score-loop --texts FILE --model_dir DIR --result_json FILE \\
        [--batch_size 256 --compare_parquet PIPELINE_OUT]

The two loops are the baselines, written without any project code (tensorflow,
tensorflow_text, numpy, pyarrow and the standard library only), so they are also an
independent check of the pipelines' results:

* ``generate-loop`` reads the prompt lines (LF, CRLF and a lone CR end a line; blank lines
  are skipped but keep their number), derives each row's seed from --seed and the row id
  ``FILE:LINE`` with the same formula as ``pipelines.generate`` (re-implemented here, not
  imported), loads ``MODEL_DIR/export`` and calls its ``generate`` signature on batches of
  --batch_size prompts in file order; ``loop_s`` times that loop of model calls only (the load
  and a warm-up call are not in it), ``done_s`` the process up to its written Parquet. With --compare_parquet it reads the pipeline's Parquet and records
  whether every row's generated text (and token count) equals the loop's.
* ``score-loop`` does the same with the ``log_likelihood`` signature on lines of text, one call
  per batch in file order, and compares ``nats_per_token`` with the pipeline's (within 1e-4).

``run`` builds what it needs if missing (a character LM on tiny Shakespeare, a prompts file and
a texts file) and times each step as its own command with `bench.measure.run_command`: the
generation pipeline, the generate loop, the LM scoring pipeline, the score loop. Its figures
have the structure of `bench.run.figure` (goal >= 0.9): generation compares whole commands,
prompts/s of the pipeline against prompts/s of the loop's command up to its written Parquet
(start-up and model load included on both sides; the loop's timed calls alone: an info row);
LM scoring compares the whole pipeline command with the loop's timed calls. `python -m bench.run`
includes them as the "generation" benchmark. --quick uses a tiny model and a few prompts: it
checks the harness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # the loops report their whole process time from here (imports included)

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
EXPORT_DIR = "export"  # MODEL_DIR/export: the SavedModel (schemas.names.MODEL_EXPORT_DIR)
GENERATE_OUTPUTS = ("text", "num_tokens", "log_prob", "prompt_tokens", "prompt_oov")
SCORE_OUTPUTS = ("total_nats", "nats_per_token", "bits_per_char", "num_tokens", "num_chars", "num_oov")
NATS_TOLERANCE = 1e-4  # |loop - pipeline| nats per token
LOG_PROB_TOLERANCE = 1e-3  # |loop - pipeline| log-probability of a whole continuation (info only)
MAX_MISMATCHES_SHOWN = 5
_LINE_END = re.compile(b"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"

# What `run` builds and measures. Speed depends on the architecture, not on how well it is trained.
LM_INGEST_FLAGS = ["--task", "language_model", "--input_format", "text", "--tokenizer", "char"]
LM_INGEST_FLAGS += ["--split_by", "position", "--validation_fraction", "0.1", "--test_fraction", "0"]
QUICK_LM_FLAGS = ["--embedding_dim", "16", "--lstm_units", "32", "--num_layers", "1", "--epochs", "1"]
QUICK_LM_FLAGS += ["--steps_per_epoch", "20", "--batch_size", "8", "--sequence_length", "32"]
FULL_LM_FLAGS = ["--embedding_dim", "128", "--lstm_units", "512", "--num_layers", "2", "--epochs", "1"]
FULL_LM_FLAGS += ["--steps_per_epoch", "5", "--batch_size", "16", "--sequence_length", "64"]
COMMON_LM_FLAGS = ["--validation_tokens", "2000", "--verbose", "0"]
# Full run: 8,192 prompts x 100 new characters, about 4 minutes of model calls on one core: a bulk job
# long enough that start-up (imports, model load, Beam's stages, validation) is a minor part of it,
# as for the classifier's scoring benchmark on all 100k reviews (docs/performance.md).
SIZES = {"quick": {"prompts": 64, "texts": 500, "max_new_tokens": 20}, "full": {"prompts": 8192, "texts": 0}}
SIZES["full"]["max_new_tokens"] = 100
PROMPT_CHARS = 20  # a prompt is the first 20 characters of a corpus line
GENERATE_BATCH = 64  # prompts per model call, both sides (the pipeline's default --batch_size)
SCORE_LOOP_BATCH = 256  # texts per model call in the bare score loop
TEMPERATURE = 0.8
SEED = 1
# Both language-model pipelines run on Beam's default (in-process) runner unless --runner_mode says otherwise:
# their work is a few large TensorFlow calls that use every core from one process, so the multi-process
# runner's two workers would only add two more interpreters importing TensorFlow, Beam and Great Expectations
# and loading the model, and two TensorFlow thread pools competing for the 2 cores (measured in
# docs/performance.md: generation 56 vs 95 CPU-s on 1,024 prompts; LM scoring of 32,777 lines 200.7 s
# in-process vs 258.1 s with 2 workers).
GENERATION_RUNNER = "in_process"


# ---------------------------------------------------------------------- the bare loops (no project code)
def row_seed(base_seed: int, row_id: str) -> int:
    """A row's sampling seed, as pipelines.generate derives it (re-implemented: the loop is independent)."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{row_id}".encode()).digest()[:8], "big") >> 1


def read_lines(path: str) -> list[tuple[str, str]]:
    """(row id "FILE:LINE", text) of every non-blank line, as the `lines` input format numbers them."""
    data = Path(path).read_bytes()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    pieces = _LINE_END.split(data)
    if pieces and not pieces[-1]:
        pieces.pop()  # the end of the last line, not an empty line
    name = os.path.basename(path)
    rows = []
    for number, raw in enumerate(pieces, start=1):
        text = raw.decode("utf-8")
        if text.strip():  # the pipelines quarantine blank lines
            rows.append((f"{name}:{number}", text))
    return rows


def load_signature(model_dir: str, name: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 -- registers the tokenizer ops the exported graph uses

    return tf.saved_model.load(str(Path(model_dir) / EXPORT_DIR)).signatures[name]


def read_parquet_rows(folder: str, columns: list[str]) -> dict[str, dict]:
    """{id: row} of every Parquet file under `folder` (a pipeline's output dir or its data folder)."""
    import pyarrow.parquet as pq

    rows: dict[str, dict] = {}
    files = sorted(Path(folder).rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet files under {folder}")
    for path in files:
        table = pq.read_table(path, columns=["id", *columns])
        for row in table.to_pylist():
            rows[row["id"]] = row
    return rows


def write_parquet(path: str, columns: dict[str, list]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def rows_by_id(columns: dict[str, list]) -> dict[str, dict]:
    return {values[0]: dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)}


def _first_difference(first: str, second: str) -> int:
    for i, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return i
    return min(len(first), len(second))


def compare_generated(loop: dict[str, dict], pipeline: dict[str, dict]) -> dict:
    """Loop rows vs pipeline rows by id: texts and token counts must be equal."""
    common = sorted(set(loop) & set(pipeline))
    mismatches = []
    equal_texts = 0
    log_prob_diff = 0.0
    for row_id in common:
        mine, theirs = loop[row_id], pipeline[row_id]
        log_prob_diff = max(log_prob_diff, abs(mine["log_prob"] - theirs["log_prob"]))
        if mine["generated_text"] == theirs["generated_text"] and mine["num_tokens"] == theirs["num_tokens"]:
            equal_texts += 1
        elif len(mismatches) < MAX_MISMATCHES_SHOWN:
            at = _first_difference(mine["generated_text"], theirs["generated_text"])
            mismatches.append(
                {
                    "id": row_id,
                    "prompt_equal": mine["prompt"] == theirs["prompt"],
                    "seed_loop": mine["seed"],
                    "seed_pipeline": theirs["seed"],
                    "num_tokens_loop": mine["num_tokens"],
                    "num_tokens_pipeline": theirs["num_tokens"],
                    "first_difference_at": at,
                    "loop": mine["generated_text"][max(0, at - 10) : at + 30],
                    "pipeline": theirs["generated_text"][max(0, at - 10) : at + 30],
                }
            )
    return {
        "compared": len(common),
        "equal_texts": equal_texts,
        "all_equal": bool(common) and equal_texts == len(common) and len(loop) == len(pipeline),
        "only_in_loop": sorted(set(loop) - set(pipeline))[:MAX_MISMATCHES_SHOWN],
        "only_in_loop_count": len(set(loop) - set(pipeline)),
        "only_in_pipeline_count": len(set(pipeline) - set(loop)),
        "seeds_equal": all(loop[i]["seed"] == pipeline[i]["seed"] for i in common),
        "max_abs_log_prob_difference": log_prob_diff,
        "mismatches": mismatches,
    }


def compare_scored(loop: dict[str, dict], pipeline: dict[str, dict]) -> dict:
    """Loop rows vs pipeline rows by id: nats per token within NATS_TOLERANCE, same token counts."""
    common = sorted(set(loop) & set(pipeline))
    diffs = [abs(loop[i]["nats_per_token"] - pipeline[i]["nats_per_token"]) for i in common]
    close = [
        d <= NATS_TOLERANCE and loop[i]["num_tokens"] == pipeline[i]["num_tokens"]
        for d, i in zip(diffs, common, strict=True)
    ]
    # The pipeline quarantines texts with no tokens after cleaning; the loop scores them (0 nats).
    empty_in_loop = sum(1 for i in set(loop) - set(pipeline) if loop[i]["num_tokens"] == 0)
    return {
        "compared": len(common),
        "within_tolerance": sum(close),
        "tolerance": NATS_TOLERANCE,
        "max_abs_nats_per_token_difference": max(diffs, default=0.0),
        "all_equal": bool(common) and all(close) and len(loop) - empty_in_loop == len(pipeline),
        "only_in_loop_count": len(set(loop) - set(pipeline)),
        "only_in_loop_with_no_tokens": empty_in_loop,
        "only_in_pipeline_count": len(set(pipeline) - set(loop)),
        "mismatches": [
            {"id": i, "loop": loop[i]["nats_per_token"], "pipeline": pipeline[i]["nats_per_token"]}
            for i, ok in zip(common, close, strict=True)
            if not ok
        ][:MAX_MISMATCHES_SHOWN],
    }


def generate_loop(args: argparse.Namespace) -> dict:
    """The generate signature on in-memory batches of prompts; returns rows/s of the timed calls."""
    import numpy as np
    import tensorflow as tf

    rows = read_lines(args.prompts)
    if not rows:
        raise SystemExit(f"no prompts in {args.prompts}")
    ids = [row_id for row_id, _ in rows]
    prompts = [text for _, text in rows]
    seeds = np.array([row_seed(args.seed, row_id) for row_id in ids], dtype=np.int64)
    load_started = time.perf_counter()
    generate = load_signature(args.model_dir, "generate")
    settings = {
        "max_new_tokens": tf.constant(args.max_new_tokens, tf.int32),
        "temperature": tf.constant(args.temperature, tf.float32),
        "top_k": tf.constant(args.top_k, tf.int32),
        "top_p": tf.constant(args.top_p, tf.float32),
        "stop": tf.constant(args.stop),
    }
    # Warm-up call (graph initialisation), not timed.
    warm = min(len(prompts), 2)
    generate(prompt=tf.constant(prompts[:warm]), seed=tf.constant(seeds[:warm]), **settings)
    load_s = time.perf_counter() - load_started
    outputs: dict[str, list] = {key: [] for key in GENERATE_OUTPUTS}
    started = time.perf_counter()
    for start in range(0, len(prompts), args.batch_size):
        out = generate(
            prompt=tf.constant(prompts[start : start + args.batch_size]),
            seed=tf.constant(seeds[start : start + args.batch_size]),
            **settings,
        )
        for key in GENERATE_OUTPUTS:
            outputs[key].extend(out[key].numpy().tolist())
    loop_s = time.perf_counter() - started
    texts = [t.decode("utf-8", errors="replace") for t in outputs["text"]]
    columns = {
        "id": ids,
        "prompt": prompts,
        "generated_text": texts,
        "num_tokens": outputs["num_tokens"],
        "log_prob": outputs["log_prob"],
        "prompt_tokens": outputs["prompt_tokens"],
        "prompt_oov": outputs["prompt_oov"],
        "seed": seeds.tolist(),
    }
    if args.output_parquet:
        write_parquet(args.output_parquet, columns)
    done_s = time.perf_counter() - STARTED  # the loop's work is done: what follows only checks it
    tokens = int(sum(outputs["num_tokens"]))
    result = {
        "rows": len(prompts),
        "done_s": round(done_s, 3),
        "tokens_generated": tokens,
        "loop_s": round(loop_s, 3),
        "load_s": round(load_s, 3),
        "rows_per_s": round(len(prompts) / loop_s, 2) if loop_s > 0 else None,
        "tokens_per_s": round(tokens / loop_s, 1) if loop_s > 0 else None,
        "batch_size": args.batch_size,
        "settings": {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "stop": args.stop,
            "seed": args.seed,
        },
    }
    if args.compare_parquet:
        loop_rows = rows_by_id(columns)
        pipeline_rows = read_parquet_rows(
            args.compare_parquet, ["prompt", "generated_text", "num_tokens", "log_prob", "seed"]
        )
        result["comparison"] = compare_generated(loop_rows, pipeline_rows)
    result["process_s"] = round(time.perf_counter() - STARTED, 2)
    return result


def score_loop(args: argparse.Namespace) -> dict:
    """The log_likelihood signature on in-memory batches of texts in file order; returns rows/s of the timed calls."""
    import tensorflow as tf

    rows = read_lines(args.texts)
    if not rows:
        raise SystemExit(f"no texts in {args.texts}")
    ids = [row_id for row_id, _ in rows]
    texts = [text for _, text in rows]
    load_started = time.perf_counter()
    log_likelihood = load_signature(args.model_dir, "log_likelihood")
    log_likelihood(text=tf.constant(texts[: min(len(texts), 8)]))  # warm-up, not timed
    load_s = time.perf_counter() - load_started
    outputs: dict[str, list] = {key: [] for key in SCORE_OUTPUTS}
    started = time.perf_counter()
    for start in range(0, len(texts), args.batch_size):
        out = log_likelihood(text=tf.constant(texts[start : start + args.batch_size]))
        for key in SCORE_OUTPUTS:
            outputs[key].extend(out[key].numpy().tolist())
    loop_s = time.perf_counter() - started
    columns = {"id": ids, **outputs}
    if args.output_parquet:
        write_parquet(args.output_parquet, columns)
    done_s = time.perf_counter() - STARTED  # the loop's work is done: what follows only checks it
    tokens = int(sum(outputs["num_tokens"]))
    result = {
        "rows": len(texts),
        "done_s": round(done_s, 3),
        "tokens_scored": tokens,
        "loop_s": round(loop_s, 3),
        "load_s": round(load_s, 3),
        "rows_per_s": round(len(texts) / loop_s, 1) if loop_s > 0 else None,
        "tokens_per_s": round(tokens / loop_s, 1) if loop_s > 0 else None,
        "batch_size": args.batch_size,
    }
    if args.compare_parquet:
        loop_rows = rows_by_id(columns)
        pipeline_rows = read_parquet_rows(args.compare_parquet, ["nats_per_token", "num_tokens"])
        result["comparison"] = compare_scored(loop_rows, pipeline_rows)
    result["process_s"] = round(time.perf_counter() - STARTED, 2)
    return result


# ---------------------------------------------------------------------- the benchmark (project harness)
def make_inputs(folder: Path, quick: bool) -> tuple[Path, Path]:
    """prompts_MODE_COUNT.txt (first characters of evenly spaced corpus lines) and texts_MODE.txt (corpus lines)."""
    size = SIZES["quick" if quick else "full"]
    mode = "quick" if quick else "full"
    prompts_path = folder / f"prompts_{mode}_{size['prompts']}.txt"  # the count in the name: a new size, a new file
    texts_path = folder / f"texts_{mode}.txt"
    if prompts_path.exists() and texts_path.exists():
        return prompts_path, texts_path
    if not SHAKESPEARE.is_file():
        raise FileNotFoundError(f"tiny Shakespeare is missing at {SHAKESPEARE}")
    lines = [line for line in SHAKESPEARE.read_text(encoding="utf-8").split("\n") if line.strip()]

    def spaced(count: int) -> list[str]:
        return lines if not count or count >= len(lines) else [lines[i * len(lines) // count] for i in range(count)]

    folder.mkdir(parents=True, exist_ok=True)
    prompts = [line[:PROMPT_CHARS] for line in spaced(size["prompts"])]
    prompts_path.write_text("".join(p + "\n" for p in prompts if p.strip()), encoding="utf-8")
    texts_path.write_text("".join(t + "\n" for t in spaced(size["texts"])), encoding="utf-8")
    return prompts_path, texts_path


def build_model(h, work: Path) -> Path:
    """The character LM on tiny Shakespeare (ingested and trained once per work dir and mode)."""
    dataset = work / "dataset"
    if not (dataset / "manifest.json").exists():
        h.run(
            "generation_ingest",
            h.py(
                "pipelines.ingest", "--input", str(SHAKESPEARE), *LM_INGEST_FLAGS, "--output_dir", str(dataset),
                "--overwrite",
            ),
        )  # fmt: skip
    model = work / ("lm_quick" if h.quick else "lm_full")
    if not (model / "model_info.json").exists() or not (model / EXPORT_DIR / "saved_model.pb").exists():
        h.run(
            "generation_train_lm",
            h.py(
                "lstm_model.train", "--dataset_dir", str(dataset), "--model_dir", str(model), "--overwrite",
                *(QUICK_LM_FLAGS if h.quick else FULL_LM_FLAGS), *COMMON_LM_FLAGS,
            ),
        )  # fmt: skip
    return model


def generation_beam_flags(h) -> list[str]:
    """The language-model pipelines' runner flags: GENERATION_RUNNER's unless --runner_mode names one."""
    from bench.run import RUNNER_MODES

    return h.beam_flags if h.args.runner_mode else RUNNER_MODES[GENERATION_RUNNER]


def bench_generation(h) -> dict:
    """Generation and LM scoring, pipeline vs bare loop; `h` is a `bench.run.Harness`. Returns figures and runs."""
    from bench.run import GOAL_SCORE_RATE_RATIO, figure

    work = h.work / "generation"
    size = SIZES["quick" if h.quick else "full"]
    model = build_model(h, work)
    prompts, texts = make_inputs(work / "inputs", h.quick)
    model_flags = ["--model_dir", str(model)]

    # Generation: the pipeline first (the loop compares its texts with the pipeline's Parquet).
    sampling = ["--max_new_tokens", str(size["max_new_tokens"]), "--temperature", str(TEMPERATURE)]
    sampling += ["--seed", str(SEED), "--batch_size", str(GENERATE_BATCH)]
    generated_dir = work / "generate_pipeline"
    gen_pipe = h.run(
        "generate_pipeline",
        h.py(
            "pipelines.generate", "--input", str(prompts), "--input_format", "lines", *model_flags,
            "--output_dir", str(generated_dir), "--overwrite", "--allow_unblessed", *sampling,
            *generation_beam_flags(h),
        ),
    )  # fmt: skip
    gen_manifest = json.loads((generated_dir / "manifest.json").read_text())
    gen_json = work / "generate_loop_result.json"
    gen_loop = h.run(
        "generate_loop",
        h.py(
            "bench.generation", "generate-loop", "--prompts", str(prompts), *model_flags, "--result_json",
            str(gen_json), *sampling, "--compare_parquet", str(generated_dir / "generated"),
            "--output_parquet", str(work / "generate_loop" / "generated.parquet"),
        ),
    )  # fmt: skip
    gen_result = json.loads(gen_json.read_text())

    # LM scoring.
    scored_dir = work / "score_pipeline"
    score_pipe = h.run(
        "lm_score_pipeline",
        h.py(
            "pipelines.score", "--input", str(texts), "--input_format", "lines", *model_flags,
            "--output_dir", str(scored_dir), "--overwrite", "--allow_unblessed", *generation_beam_flags(h),
        ),
    )  # fmt: skip
    score_manifest = json.loads((scored_dir / "manifest.json").read_text())
    score_json = work / "score_loop_result.json"
    score_loop_run = h.run(
        "lm_score_loop",
        h.py(
            "bench.generation", "score-loop", "--texts", str(texts), *model_flags, "--result_json", str(score_json),
            "--batch_size", str(SCORE_LOOP_BATCH), "--compare_parquet", str(scored_dir / "scored"),
            "--output_parquet", str(work / "score_loop" / "scored.parquet"),
        ),
    )  # fmt: skip
    score_result = json.loads(score_json.read_text())

    generated = gen_manifest["counts"]["generated"]
    gen_tokens = gen_manifest["generation"]["tokens"]
    gen_rate = generated / gen_pipe["wall_s"]
    # The loop's whole command: interpreter, imports, model load, warm-up, calls, its Parquet; not the
    # comparison with the pipeline's Parquet that follows (a check, not the loop's work).
    gen_loop_s = gen_loop["wall_s"] - max(0.0, gen_result["process_s"] - gen_result["done_s"])
    gen_loop_rate = gen_result["rows"] / gen_loop_s
    gen_check = gen_result["comparison"]
    scored = score_manifest["counts"]["scored"]
    score_tokens = score_manifest["drift"]["corpus"]["tokens"]
    score_rate = scored / score_pipe["wall_s"]
    score_check = score_result["comparison"]
    max_new = size["max_new_tokens"]
    figures = [
        figure(
            "generation",
            "prompts/s, pipeline (prompts file -> Parquet, whole command) / bare loop (whole command: start-up, "
            "model load, generate calls, Parquet)",
            f"{gen_rate:.2f} prompts/s",
            f"{gen_loop_rate:.2f} prompts/s",
            gen_rate / gen_loop_rate,
            f">= {GOAL_SCORE_RATE_RATIO}",
            GOAL_SCORE_RATE_RATIO,
            higher=True,
            note=f"{generated} prompts x up to {max_new} new characters, batches of {GENERATE_BATCH}; pipeline "
            f"{gen_pipe['wall_s']:.1f} s ({h.args.runner_mode or GENERATION_RUNNER} runner), loop {gen_loop_s:.1f} s, of which "
            f"{gen_result['loop_s']:.1f} s of model calls",
        ),
        figure(
            "generation",
            "prompts/s, pipeline (whole command) / bare loop's timed generate calls only (start-up not counted)",
            f"{gen_rate:.2f} prompts/s",
            f"{gen_result['rows_per_s']:.2f} prompts/s",
            gen_rate / gen_result["rows_per_s"],
            "info",
            None,
            higher=True,
            note="the pipeline's fixed cost (imports, Beam's stages, validation, manifest) against none",
        ),
        figure(
            "generation",
            "tokens generated per second, pipeline (whole command) / bare loop (whole command)",
            f"{gen_tokens / gen_pipe['wall_s']:.0f} tokens/s",
            f"{gen_result['tokens_generated'] / gen_loop_s:.0f} tokens/s",
            (gen_tokens / gen_pipe["wall_s"]) / (gen_result["tokens_generated"] / gen_loop_s),
            "info",
            None,
            higher=True,
        ),
        figure(
            "generation",
            "generated texts equal to the bare loop's (same prompts, per-row seeds from --seed and the row id)",
            f"{gen_check['equal_texts']} / {gen_check['compared']} rows",
            f"{gen_result['rows']} loop rows",
            gen_check["equal_texts"] / gen_check["compared"] if gen_check["compared"] else None,
            "== 1",
            1.0,
            higher=True,
            note=f"all equal: {gen_check['all_equal']}; max |log_prob difference| "
            f"{gen_check['max_abs_log_prob_difference']:.2g}",
        ),
        figure(
            "lm_score",
            "texts/s, LM scoring pipeline (lines -> Parquet, whole command) / bare loop (timed log_likelihood calls)",
            f"{score_rate:.0f} texts/s",
            f"{score_result['rows_per_s']:.0f} texts/s",
            score_rate / score_result["rows_per_s"],
            f">= {GOAL_SCORE_RATE_RATIO}",
            GOAL_SCORE_RATE_RATIO,
            higher=True,
            note=f"{scored} lines, {score_tokens} characters; the loop makes one call per {SCORE_LOOP_BATCH} lines "
            f"in file order and times its model calls only ({score_result['loop_s']:.1f} s of a "
            f"{score_loop_run['wall_s']:.1f} s command)",
        ),
        figure(
            "lm_score",
            "tokens scored per second, pipeline (whole command) / bare loop",
            f"{score_tokens / score_pipe['wall_s']:.0f} tokens/s",
            f"{score_result['tokens_per_s']:.0f} tokens/s",
            (score_tokens / score_pipe["wall_s"]) / score_result["tokens_per_s"],
            "info",
            None,
            higher=True,
        ),
        figure(
            "lm_score",
            f"nats per token equal to the bare loop's (within {NATS_TOLERANCE:g})",
            f"{score_check['within_tolerance']} / {score_check['compared']} rows",
            f"{score_result['rows']} loop rows",
            score_check["within_tolerance"] / score_check["compared"] if score_check["compared"] else None,
            "== 1",
            1.0,
            higher=True,
            note=f"all equal: {score_check['all_equal']}; max |difference| "
            f"{score_check['max_abs_nats_per_token_difference']:.2g}",
        ),
    ]
    if not getattr(h.args, "keep", False):
        import shutil

        for name in ("generate_pipeline", "generate_loop", "score_pipeline", "score_loop"):
            shutil.rmtree(work / name, ignore_errors=True)
    return {
        "figures": figures,
        "model_dir": str(model),
        "prompts_file": str(prompts),
        "texts_file": str(texts),
        "generation": {"pipeline": {**gen_pipe, "generated": generated, "tokens": gen_tokens}, "loop": gen_result},
        "lm_score": {"pipeline": {**score_pipe, "scored": scored, "tokens": score_tokens}, "loop": score_result},
    }


def figures_markdown(figures: list[dict]) -> str:
    lines = ["| benchmark | figure | measured | baseline (same run) | ratio | goal | status |", "|---" * 7 + "|"]
    for f in figures:
        cells = (f["benchmark"], f["figure"], f["value"], f["baseline"], f["ratio"], f["goal"], f["status"])
        lines.append("| " + " | ".join("-" if c is None else str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def run_benchmarks(args: argparse.Namespace) -> dict:
    """`run`: the generation benchmarks alone; writes WORK_DIR/results.json and results.md."""
    from bench import run as bench_run
    from bench.measure import machine_info

    flags = ["--work_dir", args.work_dir, *(["--quick"] if args.quick else []), *(["--keep"] if args.keep else [])]
    if args.runner_mode:
        flags += ["--runner_mode", args.runner_mode]
    h = bench_run.Harness(bench_run.build_parser().parse_args(flags))
    h.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"mode": "quick" if args.quick else "full", "machine": machine_info(), "beam_flags": h.beam_flags}
    results["benchmarks"] = {"generation": bench_generation(h)}
    results["commands"] = h.commands
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    (h.work / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    table = figures_markdown(results["benchmarks"]["generation"]["figures"])
    commands = "\n".join(
        f"| {c['step']} | `{c['command']}` | {c['wall_s']:.1f} | {c['cpu_s']:.0f} | {c['peak_pss_mb']:.0f} | "
        f"{c['other_load_cores']:.2f} |"
        for c in h.commands
    )
    (h.work / "results.md").write_text(
        f"# Generation benchmarks ({results['mode']} run)\n\n{table}\n\n"
        "| step | command | wall s | CPU s | peak PSS MiB | other load |\n|---|---|---|---|---|---|\n"
        f"{commands}\n"
    )
    print(table, flush=True)
    print(f"[bench] done in {results['total_wall_s']:.0f} s -> {h.work / 'results.json'}", flush=True)
    return results


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate-loop", help="The generate signature on in-memory batches of prompts.")
    gen.add_argument("--prompts", required=True, help="Prompts, one per line (the pipeline's `lines` format).")
    gen.add_argument("--model_dir", required=True, help="Trained language model directory (with export/).")
    gen.add_argument("--result_json", required=True, help="Where to write rows/s, timings and the comparison.")
    gen.add_argument("--batch_size", type=int, default=GENERATE_BATCH, help="Prompts per call (default: %(default)s).")
    gen.add_argument("--max_new_tokens", type=int, default=200, help="(default: %(default)s, the pipeline's)")
    gen.add_argument("--temperature", type=float, default=0.8, help="(default: %(default)s, the pipeline's)")
    gen.add_argument("--top_k", type=int, default=0, help="(default: %(default)s, the pipeline's)")
    gen.add_argument("--top_p", type=float, default=1.0, help="(default: %(default)s, the pipeline's)")
    gen.add_argument("--stop", default="", help="(default: none, the pipeline's)")
    gen.add_argument("--seed", type=int, default=0, help="Base seed (default: %(default)s, the pipeline's).")
    gen.add_argument("--output_parquet", default=None, help="Write the loop's rows to this Parquet file.")
    gen.add_argument("--compare_parquet", default=None, help="The pipeline's output dir: compare texts by row id.")
    score = commands.add_parser("score-loop", help="The log_likelihood signature on in-memory batches of texts.")
    score.add_argument("--texts", required=True, help="Texts, one per line (the pipeline's `lines` format).")
    score.add_argument("--model_dir", required=True, help="Trained language model directory (with export/).")
    score.add_argument("--result_json", required=True, help="Where to write rows/s, timings and the comparison.")
    score.add_argument(
        "--batch_size", type=int, default=SCORE_LOOP_BATCH, help="Texts per call (default: %(default)s)."
    )
    score.add_argument("--output_parquet", default=None, help="Write the loop's rows to this Parquet file.")
    score.add_argument("--compare_parquet", default=None, help="The pipeline's output dir: compare nats by row id.")
    bench = commands.add_parser("run", help="Build what is missing, time pipelines and loops, write results.")
    bench.add_argument("--work_dir", required=True, help="Scratch directory (model, inputs, outputs, logs, results).")
    bench.add_argument("--quick", action="store_true", help="Tiny model, few prompts: checks the harness only.")
    bench.add_argument("--keep", action="store_true", help="Keep the Parquet outputs of the measured steps.")
    bench.add_argument(
        "--runner_mode",
        default=None,
        help="bench.run's --runner_mode (default: multi_processing; --quick: in_process).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.command == "run":
        run_benchmarks(args)
        return 0
    result = generate_loop(args) if args.command == "generate-loop" else score_loop(args)
    Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result_json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "comparison"}), flush=True)
    comparison = result.get("comparison")
    if comparison is not None:
        print(json.dumps(comparison), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
