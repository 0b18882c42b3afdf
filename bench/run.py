"""Run the benchmarks and write reports/bench/results.json and results.md.

    python -m bench.run            # full IMDB (100k reviews), about 25-35 minutes on 2 cores
    python -m bench.run --quick    # the 1,496-review slice, in-process runner, about 80 s: checks the harness, not speed

Benchmarks (each figure is a ratio against a baseline measured in the same run):

1. ingest: `pipelines.ingest` on the local multi-process runner vs two independent references,
   `bench.plain_ingest` (one process, no project code) and `bench.tft_ingest` (tf.Transform, in
   its own .venv-tft); wall and CPU time at every scale, and peak memory at 1x/2x/4x.
2. train_input: steps/s of the model fed by `lstm_model.data.training_dataset` vs the
   same batches from in-memory tensors (`bench.train_input`).
3. score: documents/s of `pipelines.score` (RunInference -> Parquet) vs `bench.baselines
   score-loop` (the exported model on in-memory batches); wall time and peak memory at 1x/2x/4x.
4. generation: prompts/s of `pipelines.generate` and texts/s of LM scoring vs bare loops
   (`bench/generation.py`).
5. translation: sentences/s of `pipelines.translate` (beam search -> Parquet) vs bare loops over
   the exported `translate` signature, length-sorted and in file order (`bench/translation.py`).

Every measured step is a separate command (listed in the report with its wall time,
CPU time and peak memory of its whole process tree); see docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

from bench import corpus, report
from bench.measure import CommandFailed, bench_env, machine_info, run_command

REPO = Path(__file__).resolve().parent.parent
MINI = REPO.parent / "shared" / "data" / "imdb" / "mini" / "aclImdb"
# Local runner modes: Beam flags added to the pipeline commands.
RUNNER_MODES = {
    "multi_processing": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
    "multi_threading": ["--direct_num_workers", "2", "--direct_running_mode", "multi_threading"],
    "in_process": [],
}
# The model scored in the full run: the default architecture (what `make full` trains), trained
# briefly -- scoring cost depends on the architecture, not on how well it was trained.
FULL_SCORING_MODEL_FLAGS = ["--epochs", "1", "--max_train_examples", "2048"]
# The quick run's model: tiny, as in the test suite.
TINY_MODEL_FLAGS = ["--epochs", "1", "--embedding_dim", "16", "--lstm_units", "8", "--max_tokens", "128"]

# Goals from the issue; memory "bounded/flat" is made concrete in docs/performance.md.
GOAL_INGEST_WALL_RATIO = 1.0  # pipeline wall time <= 1.0 x the independent plain loop (bench/plain_ingest.py)
GOAL_INGEST_CPU_RATIO = 2.0  # pipeline CPU time (all processes) <= 2 x the plain loop's
GOAL_INGEST_TFT_RATIO = 0.5  # pipeline wall time <= 0.5 x tf.Transform (bench/tft_ingest.py)
TFT_VENV = ".venv-tft"  # tf.Transform's own environment: it needs absl-py < 2, the pins do not allow it
TFT_REQUIREMENTS = ("tensorflow-transform==1.21.0", "apache-beam==2.77.0", "tensorflow==2.21.0")
GOAL_TRAIN_INPUT_RATIO = 0.95  # TFRecord input steps/s >= 0.95 x in-memory
GOAL_SCORE_RATE_RATIO = 0.9  # pipeline documents/s >= 0.9 x bare loop
GOAL_LINEARITY = 1.10  # wall(k x corpus) / (k x wall(1x)) <= 1.10
GOAL_MEMORY_GROWTH = 0.25  # MiB of extra peak memory per MiB of extra corpus, 1x -> 4x


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmarks for ingest, training input and bulk scoring; writes results.json and results.md.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="The IMDB slice, small settings: checks that the harness runs."
    )
    parser.add_argument(
        "--input", default=None, help="aclImdb folder (default: full IMDB extracted into data/raw; --quick: the slice)."
    )
    parser.add_argument(
        "--work_dir",
        default=None,
        help="Scratch directory for datasets, models, scored output (default: data/bench[_quick]).",
    )
    parser.add_argument(
        "--out_dir", default=None, help="Where results.json/md go (default: reports/bench, --quick: WORK_DIR/report)."
    )
    parser.add_argument(
        "--only",
        default="ingest,train_input,score,generation,translation",  # generation, translation: bench/*.py
        help="Comma-separated benchmarks to run (default: all).",
    )
    parser.add_argument(
        "--model_dir", default=None, help="Score with this trained model instead of training one (development)."
    )
    parser.add_argument(
        "--train_steps", type=int, default=None, help="Timed training steps per run (default: 30, --quick: 3)."
    )
    parser.add_argument(
        "--train_repeats", type=int, default=None, help="Runs per training input arm (default: 4, --quick: 1)."
    )
    parser.add_argument(
        "--ingest_repeats",
        type=int,
        default=None,
        help="Paired runs (pipeline, plain loop) of ingest at the smallest and the full scale; ratios and peaks "
        "are their medians (default: 3, --quick: 1).",
    )
    parser.add_argument(
        "--scales",
        default=None,
        help="Corpus shares for the growth figures, comma-separated 1/n (default: 1/4,1/2,1; --quick: 1, no growth figures).",
    )
    parser.add_argument(
        "--runner_mode",
        choices=sorted(RUNNER_MODES),
        default=None,
        help="Local runner mode of the pipelines (default: multi_processing, 2 workers; --quick: in_process).",
    )
    parser.add_argument(
        "--no_tft",
        action="store_true",
        help="Skip the tf.Transform reference of the ingest benchmark (--quick skips it too).",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep WORK_DIR's outputs (default: remove them at the end, keeping logs)."
    )
    return parser


class Harness:
    """Runs commands, keeps their measurements, and holds the plan of one run."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = args.quick
        self.work = Path(args.work_dir or (REPO / "data" / ("bench_quick" if args.quick else "bench"))).resolve()
        self.out = Path(args.out_dir or (self.work / "report" if args.quick else REPO / "reports" / "bench")).resolve()
        self.logs = self.work / "logs"
        self.python = sys.executable
        self.beam_flags = RUNNER_MODES[args.runner_mode or ("in_process" if args.quick else "multi_processing")]
        default_scales = "1" if args.quick else "1/4,1/2,1"
        self.scales = sorted(Fraction(s) for s in (args.scales or default_scales).split(","))
        if self.scales[-1] != 1 or any(s <= 0 or s > 1 for s in self.scales):
            raise SystemExit("--scales must be shares in (0, 1] and include 1")
        self.ingest_repeats = args.ingest_repeats or (1 if args.quick else 3)
        if self.ingest_repeats < 1:
            raise SystemExit("--ingest_repeats must be at least 1")
        self.commands: list[dict] = []

    def run(self, step: str, command: list[str]) -> dict:
        """Run and record one measured command."""
        display = shlex.join(["python" if part == self.python else self._relative(part) for part in command])
        print(f"[bench] {step}: {display}", flush=True)
        measured = run_command(command, self.logs / f"{step}.log", cwd=REPO)
        print(
            f"[bench]   {measured['wall_s']:.1f} s wall, {measured['cpu_s']:.0f} s CPU, "
            f"peak {measured['peak_pss_mb']:.0f} MiB (PSS, {measured['processes']} processes), "
            f"other load {measured['other_load_cores']:.2f} cores",
            flush=True,
        )
        record = {"step": step, "command": display, **measured}
        self.commands.append(record)
        return record

    @staticmethod
    def _relative(part: str) -> str:
        try:
            return str(Path(part).resolve().relative_to(REPO)) if part.startswith("/") else part
        except ValueError:
            return part

    def py(self, module: str, *args: str) -> list[str]:
        return [self.python, "-m", module, *args]


def _status(value: float | None, goal: float | None, higher_is_better: bool) -> str:
    if goal is None:
        return "info"
    if value is None:
        return "n/a"
    ok = value >= goal if higher_is_better else value <= goal
    return "PASS" if ok else "MISS"


def figure(
    benchmark: str, name: str, value, baseline, ratio, goal: str, goal_value: float | None, higher: bool, note: str = ""
) -> dict:
    """One reported figure: `ratio` of `value` to its same-run `baseline`, judged against `goal_value`."""
    return {
        "benchmark": benchmark,
        "figure": name,
        "value": value,
        "baseline": baseline,
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
        "status": _status(ratio, goal_value, higher),
        "note": note,
    }


def memory_growth(runs: dict[Fraction, dict], sizes: dict[Fraction, dict]) -> float | None:
    """MiB of extra peak memory (PSS) per MiB of extra corpus, smallest -> largest scale."""
    low, high = min(runs), max(runs)
    added_corpus = (sizes[high]["bytes"] - sizes[low]["bytes"]) / 2**20
    if low == high or added_corpus <= 0:
        return None
    return (runs[high]["peak_pss_mb"] - runs[low]["peak_pss_mb"]) / added_corpus


def memory_name(runs: dict[Fraction, dict]) -> str:
    if len(runs) < 2:
        return "peak memory growth (needs 2+ scales)"
    return f"peak memory growth, x1 -> {corpus.scale_name(max(runs) / min(runs))} corpus (MiB per MiB of corpus added)"


def linearity(runs: dict[Fraction, dict]) -> dict[str, float]:
    """wall(s) / ((s / s_min) x wall(s_min)) for every larger scale s: 1.0 is exactly linear."""
    low = min(runs)
    return {
        corpus.scale_name(s / low): runs[s]["wall_s"] / (float(s / low) * runs[low]["wall_s"])
        for s in sorted(runs)
        if s != low
    }


def same_tfrecords(first: Path, second: Path) -> bool:
    """Whether two dataset directories hold the same vocabulary and the same records per shard (uncompressed)."""
    if (first / "vocab.tsv").read_bytes() != (second / "vocab.tsv").read_bytes():
        return False
    shards = sorted(p.relative_to(first) for p in first.glob("*/*.tfrecord.gz"))
    if shards != sorted(p.relative_to(second) for p in second.glob("*/*.tfrecord.gz")):
        return False
    return all(gzip.decompress((first / s).read_bytes()) == gzip.decompress((second / s).read_bytes()) for s in shards)


# ---------------------------------------------------------------------- benchmarks
def tft_python() -> Path:
    """The interpreter of the tf.Transform reference's own virtual environment (see bench/tft_ingest.py)."""
    return REPO / TFT_VENV / "bin" / "python"


def tft_unavailable_reason(h: Harness) -> str | None:
    """None if the tf.Transform reference can run, else why not (one line, for the report)."""
    if h.args.no_tft:
        return "skipped (--no_tft)"
    if h.quick:
        return "skipped in --quick (about 2 minutes even on the slice)"
    python = tft_python()
    if not python.exists():
        return f"no {TFT_VENV} (make it with `make bench-tft-env`: {' '.join(TFT_REQUIREMENTS)})"
    probe = subprocess.run(
        [str(python), "-c", "import tensorflow_transform, apache_beam, tensorflow"],
        capture_output=True,
        text=True,
        env=bench_env(),
    )
    if probe.returncode != 0:
        lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
        return f"{TFT_VENV} cannot import tensorflow_transform: {lines[-1] if lines else probe.returncode}"
    return None


def median_run(runs: list[dict]) -> dict:
    """Repeats of one command as one run: the median wall, CPU and peak PSS (each on its own)."""
    medians = {key: statistics.median(run[key] for run in runs) for key in ("wall_s", "cpu_s", "peak_pss_mb")}
    return {**runs[0], **medians, "repeats": len(runs)}


def paired_ratio(runs: list[dict], references: list[dict], key: str) -> float:
    """Median of run[key] / reference[key] over runs made back to back (run i, then reference i)."""
    return statistics.median(run[key] / reference[key] for run, reference in zip(runs, references, strict=True))


def bench_ingest(h: Harness, subsets: dict[Fraction, Path], sizes: dict[Fraction, dict]) -> dict:
    """Ingest against two independent references (a plain loop without project code, tf.Transform), per scale.

    Order per scale, largest first: pipeline and plain loop in pairs (`--ingest_repeats` pairs at the
    smallest and the full scale, one in between), then tf.Transform, so each ratio compares commands
    run minutes apart. This machine's speed drifts by 10-20 % between minutes, so the wall and CPU
    ratios are medians of the pairs' ratios, and the memory growth uses the median peak of each scale
    (a peak is a short spike). The project-code loop (`bench.baselines ingest-loop`) runs once on the
    full corpus, as a check that it writes the same records, not as a reference for speed.
    """
    full = subsets[Fraction(1)]
    out = h.work / "ingest"
    pipeline_tries: dict[Fraction, list[dict]] = {}
    plain_tries: dict[Fraction, list[dict]] = {}
    tft_runs: dict[Fraction, dict] = {}
    manifests: dict[Fraction, dict] = {}
    tft_reason = tft_unavailable_reason(h)

    def pipeline(scale: Fraction, step: str) -> None:
        target = out / f"pipeline_{corpus.scale_name(scale)}"
        command = h.py(
            "pipelines.ingest",
            "--input",
            str(subsets[scale]),
            "--output_dir",
            str(target),
            "--overwrite",
            *h.beam_flags,
        )
        pipeline_tries.setdefault(scale, []).append(h.run(f"ingest_pipeline_{step}", command))
        manifests[scale] = json.loads((target / "manifest.json").read_text())

    def plain(scale: Fraction, step: str) -> None:
        name = corpus.scale_name(scale)
        result_json = out / f"plain_{name}_result.json"
        command = h.py(
            "bench.plain_ingest",
            "--input",
            str(subsets[scale]),
            "--output_dir",
            str(out / f"plain_{name}"),
            "--result_json",
            str(result_json),
        )
        run = {**h.run(f"ingest_plain_{step}", command), **json.loads(result_json.read_text())}
        plain_tries.setdefault(scale, []).append(run)

    def tft(scale: Fraction) -> None:
        name = corpus.scale_name(scale)
        result_json = out / f"tft_{name}_result.json"
        command = [
            str(tft_python()), "-m", "bench.tft_ingest", "--input", str(subsets[scale]),
            "--output_dir", str(out / f"tft_{name}"), "--result_json", str(result_json), *h.beam_flags,
        ]  # fmt: skip
        tft_runs[scale] = {**h.run(f"ingest_tft_{name}", command), **json.loads(result_json.read_text())}

    for scale in reversed(h.scales):
        repeats = h.ingest_repeats if scale in (h.scales[0], h.scales[-1]) else 1
        for attempt in range(repeats):
            step = corpus.scale_name(scale) + (f"_r{attempt + 1}" if attempt else "")
            pipeline(scale, step)
            plain(scale, step)
        if tft_reason is None:
            try:
                tft(scale)
            except CommandFailed as error:  # the reference failing must not lose the pipeline's figures
                lines = [line for line in str(error).splitlines() if line.strip()]
                tft_reason = f"the tf.Transform run failed: {lines[-1] if lines else error}"
                tft_runs.clear()
        if scale == 1:
            loop_json = out / "loop_result.json"
            loop = h.run(
                "ingest_loop",
                h.py(
                    "bench.baselines", "ingest-loop", "--input", str(full), "--output_dir", str(out / "loop"),
                    "--result_json", str(loop_json),
                ),
            )  # fmt: skip
            loop_result = json.loads(loop_json.read_text())

    pipeline_runs = {scale: median_run(runs) for scale, runs in pipeline_tries.items()}
    plain_runs = {scale: median_run(runs) for scale, runs in plain_tries.items()}
    wall_ratios = {s: paired_ratio(pipeline_tries[s], plain_tries[s], "wall_s") for s in sorted(plain_tries)}
    cpu_ratios = {s: paired_ratio(pipeline_tries[s], plain_tries[s], "cpu_s") for s in sorted(plain_tries)}
    pairs_note = ""
    if len(pipeline_tries[Fraction(1)]) > 1:
        pairs = zip(pipeline_tries[Fraction(1)], plain_tries[Fraction(1)], strict=True)
        pairs_note = "; x1 pairs: " + ", ".join(
            f"{p['wall_s']:.1f}/{q['wall_s']:.1f} s = {p['wall_s'] / q['wall_s']:.2f}" for p, q in pairs
        )
    pipe = pipeline_runs[Fraction(1)]
    manifest = manifests[Fraction(1)]
    same = same_tfrecords(out / "pipeline_x1", out / "loop")
    if manifest["counts"]["records_out"] != loop_result["records_out"]:
        same = False
    growth = memory_growth(pipeline_runs, sizes)
    reference = plain_runs[Fraction(1)]
    figures = [
        figure(
            "ingest",
            "wall time, pipeline / independent plain loop (no project code)",
            f"{pipe['wall_s']:.1f} s",
            f"{reference['wall_s']:.1f} s",
            wall_ratios[Fraction(1)],
            f"<= {GOAL_INGEST_WALL_RATIO}",
            GOAL_INGEST_WALL_RATIO,
            higher=False,
            note="bench/plain_ingest.py: one process, stdlib + TensorFlow only; medians of "
            f"{len(pipeline_tries[Fraction(1)])} back-to-back pairs at x1; per scale: "
            + ", ".join(f"{corpus.scale_name(s)} {r:.2f}" for s, r in wall_ratios.items())
            + pairs_note,
        ),
        figure(
            "ingest",
            "CPU time, pipeline (all processes) / independent plain loop",
            f"{pipe['cpu_s']:.0f} s",
            f"{reference['cpu_s']:.0f} s",
            cpu_ratios[Fraction(1)],
            f"<= {GOAL_INGEST_CPU_RATIO}",
            GOAL_INGEST_CPU_RATIO,
            higher=False,
            note="medians of the pairs' ratios; per scale: "
            + ", ".join(f"{corpus.scale_name(s)} {r:.2f}" for s, r in cpu_ratios.items()),
        ),
    ]
    if tft_reason is None:
        tft_full = tft_runs[Fraction(1)]
        figures.append(
            figure(
                "ingest",
                "wall time, pipeline / tf.Transform (AnalyzeDataset + TransformDataset, same runner flags)",
                f"{pipe['wall_s']:.1f} s",
                f"{tft_full['wall_s']:.1f} s",
                pipe["wall_s"] / tft_full["wall_s"],
                f"<= {GOAL_INGEST_TFT_RATIO}",
                GOAL_INGEST_TFT_RATIO,
                higher=False,
                note=f"tf.Transform CPU {tft_full['cpu_s']:.0f} s; per scale: "
                + ", ".join(
                    f"{corpus.scale_name(s)} {pipeline_runs[s]['wall_s'] / tft_runs[s]['wall_s']:.2f}"
                    for s in sorted(tft_runs)
                ),
            )
        )
    else:
        figures.append(
            figure(
                "ingest",
                f"wall time, pipeline / tf.Transform: tf.Transform unavailable: {tft_reason}",
                f"{pipe['wall_s']:.1f} s",
                None,
                None,
                f"<= {GOAL_INGEST_TFT_RATIO}",
                GOAL_INGEST_TFT_RATIO,
                higher=False,
            )
        )
    figures += [
        figure(
            "ingest",
            memory_name(pipeline_runs),
            " / ".join(f"{pipeline_runs[s]['peak_pss_mb']:.0f}" for s in sorted(pipeline_runs)) + " MiB",
            f"{reference['peak_pss_mb']:.0f} MiB (plain loop, full corpus)",
            growth,
            f"<= {GOAL_MEMORY_GROWTH}",
            GOAL_MEMORY_GROWTH,
            higher=False,
            note="pipeline peak PSS of all processes at "
            + ", ".join(corpus.scale_name(s / min(pipeline_runs)) for s in sorted(pipeline_runs))
            + "; each scale's runs (its median is used): "
            + ", ".join(
                corpus.scale_name(s / min(pipeline_runs)) + " " + "/".join(f"{r['peak_pss_mb']:.0f}" for r in runs)
                for s, runs in sorted(pipeline_tries.items())
            ),
        ),
        figure(
            "ingest",
            "wall time, pipeline / project-code loop (bench.baselines ingest-loop: built from the project's own "
            "functions, so it cannot show their cost; kept as an output check)",
            f"{pipe['wall_s']:.1f} s",
            f"{loop['wall_s']:.1f} s",
            pipe["wall_s"] / loop["wall_s"],
            "info",
            None,
            higher=False,
            note=f"same records and vocabulary as the pipeline: {same}",
        ),
    ]
    return {
        "figures": figures,
        "same_outputs_as_loop": same,
        "records_in": manifest["counts"]["records_in"],
        "records_out": manifest["counts"]["records_out"],
        "pipeline": {
            corpus.scale_name(s): {**r, "records_in": manifests[s]["counts"]["records_in"]}
            for s, r in sorted(pipeline_runs.items())
        },
        "plain_loop": {corpus.scale_name(s): r for s, r in sorted(plain_runs.items())},
        "tft": {corpus.scale_name(s): r for s, r in sorted(tft_runs.items())} if tft_reason is None else None,
        "tft_unavailable": tft_reason,
        "loop": {**loop, **loop_result},
        "linearity": linearity(pipeline_runs),
        "dataset_dir": str(out / "pipeline_x1"),
    }


def train_scoring_model(h: Harness, dataset_dir: Path) -> Path:
    if h.args.model_dir:
        return Path(h.args.model_dir).resolve()
    model_dir = h.work / "model"
    flags = TINY_MODEL_FLAGS if h.quick else FULL_SCORING_MODEL_FLAGS
    h.run(
        "train_scoring_model",
        h.py(
            "lstm_model.train",
            "--dataset_dir",
            str(dataset_dir),
            "--model_dir",
            str(model_dir),
            "--overwrite",
            "--verbose",
            "0",
            *flags,
        ),
    )
    return model_dir


def bench_train_input(h: Harness, dataset_dir: Path) -> dict:
    result_json = h.work / "train_input_result.json"
    steps = h.args.train_steps or (3 if h.quick else 30)
    repeats = h.args.train_repeats or (1 if h.quick else 4)
    warmup = 2 if h.quick else 5
    config_flags = TINY_MODEL_FLAGS[2:] if h.quick else []  # architecture flags; --epochs does not apply
    command = h.py(
        "bench.train_input", "--dataset_dir", str(dataset_dir), "--result_json", str(result_json),
        "--steps", str(steps), "--warmup", str(warmup), "--repeats", str(repeats), *config_flags,
    )  # fmt: skip
    run = h.run("train_input", command)
    result = json.loads(result_json.read_text())
    real, memory = result["tfrecord"]["steps_per_s"], result["memory"]["steps_per_s"]
    first_real = min(r["first_step_s"] for r in result["tfrecord"]["runs"])
    first_memory = min(r["first_step_s"] for r in result["memory"]["runs"])
    figures = [
        figure(
            "train_input",
            "training steps/s, TFRecord tf.data input / in-memory tensors",
            f"{real:.3f} steps/s",
            f"{memory:.3f} steps/s",
            result["ratio"],
            f">= {GOAL_TRAIN_INPUT_RATIO}",
            GOAL_TRAIN_INPUT_RATIO,
            higher=True,
            note=f"median of {repeats} paired runs x {steps} steps, batch {result['batch_size']}; "
            f"first step {first_real:.1f} s vs {first_memory:.1f} s (file reading, shuffle buffer, tracing)",
        )
    ]
    return {"figures": figures, "command": run["command"], **result}


def bench_score(h: Harness, subsets: dict[Fraction, Path], sizes: dict[Fraction, dict], model_dir: Path) -> dict:
    out = h.work / "score"
    full = subsets[Fraction(1)]

    def bare_loop(step: str, *flags: str) -> tuple[dict, dict]:
        result_json = out / f"{step}_result.json"
        command = h.py(
            "bench.baselines", "score-loop", "--input", str(full), "--model_dir", str(model_dir),
            "--result_json", str(result_json), *flags,
        )  # fmt: skip
        return h.run(step, command), json.loads(result_json.read_text())

    # The goal's baseline: the bare loop, one model call per in-memory batch of texts in corpus order.
    loop, loop_result = bare_loop("score_loop", "--no_bucketing")
    same_calls = None
    if not h.quick:
        # Reference: the bare loop making the pipeline's own length-sorted model calls, so
        # pipeline / this = what Beam costs, and this / bare loop = what bucketing gains.
        same_calls = bare_loop("score_loop_bucketed")[1]
    runs: dict[Fraction, dict] = {}
    scored: dict[Fraction, int] = {}
    for scale in reversed(h.scales):
        target = out / f"pipeline_{corpus.scale_name(scale)}"
        command = h.py(
            "pipelines.score", "--input", str(subsets[scale]), "--model_dir", str(model_dir), "--output_dir", str(target),
            "--overwrite", "--passthrough_columns", "rating,folder", "--allow_unblessed", *h.beam_flags,
        )  # fmt: skip
        runs[scale] = h.run(f"score_pipeline_{corpus.scale_name(scale)}", command)
        scored[scale] = json.loads((target / "manifest.json").read_text())["counts"]["scored"]
    pipe = runs[Fraction(1)]
    rate = scored[Fraction(1)] / pipe["wall_s"]
    bare = loop_result["documents_per_s"]
    linear = linearity(runs)
    worst = max(linear.values()) if linear else None
    low = min(runs)
    growth_name = (
        "wall time growth, worst of " + ", ".join(linear) + " (1.0 = linear)"
        if linear
        else "wall time growth (needs 2+ scales)"
    )
    figures = [
        figure(
            "score",
            "documents/s, pipeline (raw files -> Parquet, whole command) / bare model loop",
            f"{rate:.0f} docs/s",
            f"{bare:.0f} docs/s",
            rate / bare,
            f">= {GOAL_SCORE_RATE_RATIO}",
            GOAL_SCORE_RATE_RATIO,
            higher=True,
            note=f"{scored[Fraction(1)]} documents; the bare loop times its model calls only ({loop_result['loop_s']:.0f} s), "
            f"batches of {loop_result['batch_size']} in corpus order",
        ),
        figure(
            "score",
            growth_name,
            " / ".join(f"{runs[s]['wall_s']:.0f}" for s in sorted(runs)) + " s",
            f"{runs[low]['wall_s']:.0f} s x scale",
            worst,
            f"<= {GOAL_LINEARITY}",
            GOAL_LINEARITY,
            higher=False,
            note="wall time at " + ", ".join(corpus.scale_name(s / low) for s in sorted(runs)) + " corpus",
        ),
        figure(
            "score",
            memory_name(runs),
            " / ".join(f"{runs[s]['peak_pss_mb']:.0f}" for s in sorted(runs)) + " MiB",
            f"{loop['peak_pss_mb']:.0f} MiB (bare loop, texts in memory)",
            memory_growth(runs, sizes),
            f"<= {GOAL_MEMORY_GROWTH}",
            GOAL_MEMORY_GROWTH,
            higher=False,
            note="pipeline peak PSS of all processes",
        ),
    ]
    if same_calls:
        figures += [
            figure(
                "score",
                "documents/s, pipeline / bare loop making the same length-sorted model calls (Beam's cost alone)",
                f"{rate:.0f} docs/s",
                f"{same_calls['documents_per_s']:.0f} docs/s",
                rate / same_calls["documents_per_s"],
                "info",
                None,
                higher=True,
            ),
            figure(
                "score",
                f"length bucketing in the bare loop: sorted calls of {same_calls['bucket_size']} / one call per batch",
                f"{same_calls['documents_per_s']:.0f} docs/s",
                f"{bare:.0f} docs/s",
                same_calls["documents_per_s"] / bare,
                "info (before/after)",
                None,
                higher=True,
            ),
        ]
    return {
        "figures": figures,
        "documents": scored[Fraction(1)],
        "loop_same_calls": same_calls,
        "pipeline": {corpus.scale_name(s): {**r, "scored": scored[s]} for s, r in sorted(runs.items())},
        "loop": {**loop, **loop_result},
        "linearity": linear,
        "model_dir": str(model_dir),
    }


# ---------------------------------------------------------------------- generation: BEGIN (bench/generation.py)
# Bulk generation and language-model scoring, pipeline vs bare loop (docs/performance.md, "Generation and
# language-model scoring"): a character LM on tiny Shakespeare built in WORK_DIR/generation (kept for reuse),
# figures "generation" and "lm_score" under results["benchmarks"]["generation"].
GENERATION = "generation"


def bench_generation(h: Harness) -> dict:
    from bench import generation  # here, not at the top: bench.generation imports figure() from this module

    return generation.bench_generation(h)


# ---------------------------------------------------------------------- generation: END


# ---------------------------------------------------------------------- translation (bench/translation.py)
# Bulk translation, pipeline vs bare loops over the exported `translate` signature: Multi30k de->en and a
# default-architecture model built in WORK_DIR/translation (kept for reuse), figures under
# results["benchmarks"]["translation"].
TRANSLATION = "translation"


def bench_translation(h: Harness) -> dict:
    from bench import translation  # here, not at the top: bench.translation imports figure() from this module

    return translation.bench_translation(h)


# ---------------------------------------------------------------------- main
def run(argv: list[str] | None = None) -> dict:
    """Run the selected benchmarks; returns the results dict (also written as JSON and markdown)."""
    args = build_parser().parse_args(argv)
    h = Harness(args)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - {"ingest", "train_input", "score", GENERATION, TRANSLATION}
    if unknown:
        raise SystemExit(f"--only: unknown benchmarks {sorted(unknown)}")
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    h.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()

    # The corpus: given, the slice (--quick), or the full IMDB extracted by the project's own command.
    if args.input:
        root = Path(args.input).resolve()
    elif args.quick:
        root = MINI
    else:
        h.run("extract_full_imdb", h.py("pipelines.datasets", "imdb", "--cache_dir", str(REPO / "data" / "raw")))
        root = REPO / "data" / "raw" / "aclImdb"
    subsets = {
        scale: corpus.make_subset(root, scale, h.work / "corpus" / corpus.scale_name(scale) / "aclImdb")
        for scale in h.scales
    }
    sizes = {scale: corpus.corpus_size(path) for scale, path in subsets.items()}
    warm_started = time.perf_counter()
    corpus.warm_page_cache(root)
    warm_s = time.perf_counter() - warm_started
    print(
        f"[bench] corpus {root}: {sizes[Fraction(1)]['files']} files, {sizes[Fraction(1)]['bytes'] / 2**20:.1f} MiB",
        flush=True,
    )

    results: dict = {
        "mode": "quick" if args.quick else "full",
        "started_at": started_at,
        "machine": machine,
        "corpus": {
            "root": str(root),
            "scales": {corpus.scale_name(s): sizes[s] for s in h.scales},
            "warm_page_cache_s": round(warm_s, 1),
        },
        "beam_flags": h.beam_flags,
        "benchmarks": {},
        "commands": h.commands,
    }
    dataset_dir = h.work / "ingest" / "pipeline_x1"

    def ingest_dataset() -> Path:
        # No ingest benchmark in this run: ingest once, not measured for the figures.
        command = h.py(
            "pipelines.ingest", "--input", str(root), "--output_dir", str(dataset_dir), "--overwrite", *h.beam_flags
        )
        h.run("ingest_dataset", command)
        return dataset_dir

    benchmarks = {
        "ingest": lambda: bench_ingest(h, subsets, sizes),
        "train_input": lambda: bench_train_input(h, dataset_dir if has_dataset() else ingest_dataset()),
        "score": lambda: bench_score(
            h, subsets, sizes, train_scoring_model(h, dataset_dir if has_dataset() else ingest_dataset())
        ),
        GENERATION: lambda: bench_generation(h),  # generation: bench/generation.py
        TRANSLATION: lambda: bench_translation(h),  # translation: bench/translation.py
    }

    def has_dataset() -> bool:
        return (dataset_dir / "manifest.json").exists()

    for name, bench in benchmarks.items():
        if name not in only:
            continue
        try:
            results["benchmarks"][name] = bench()
        except (CommandFailed, OSError, KeyError, ValueError) as error:
            # One failed benchmark still leaves a report of the others (and says what failed).
            print(f"[bench] {name} FAILED: {error}", file=sys.stderr, flush=True)
            results["benchmarks"][name] = {
                "error": str(error)[-2000:],
                "figures": [
                    figure(name, "benchmark failed (see error in results.json)", None, None, None, "runs", 1.0, True)
                ],
            }
            results["benchmarks"][name]["figures"][0]["status"] = "ERROR"
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_1m_at_end"] = round(__import__("os").getloadavg()[0], 2)
    report.write(results, h.out)
    print(
        f"[bench] done in {results['total_wall_s']:.0f} s -> {h.out / report.JSON_FILE}, {h.out / report.MARKDOWN_FILE}",
        flush=True,
    )
    print(report.figures_table(results), flush=True)
    if not args.keep:
        for name in ("ingest", "score", "model", "corpus"):
            shutil.rmtree(h.work / name, ignore_errors=True)
    return results


def main() -> None:
    results = run()
    failed = [name for name, bench in results["benchmarks"].items() if "error" in bench]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
