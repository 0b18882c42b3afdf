"""results.json and results.md: machine, versions, commands, figures with goals and PASS/MISS."""

from __future__ import annotations

import json
from pathlib import Path

JSON_FILE = "results.json"
MARKDOWN_FILE = "results.md"
BENCHMARK_ORDER = ("ingest", "train_input", "score", "generation")


def all_figures(results: dict) -> list[dict]:
    return [f for name in BENCHMARK_ORDER for f in results["benchmarks"].get(name, {}).get("figures", [])]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def figures_table(results: dict) -> str:
    lines = [
        "| benchmark | figure | measured | baseline (same run) | ratio | goal | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in all_figures(results):
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (f["benchmark"], f["figure"], f["value"], f["baseline"], f["ratio"], f["goal"], f["status"])
            )
            + " |"
        )
    return "\n".join(lines)


def markdown(results: dict) -> str:
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    scales = results["corpus"]["scales"]
    lines = [
        f"# Benchmark results ({results['mode']} run)",
        "",
        f"Started {results['started_at']}, {results['total_wall_s']:.0f} s in all. "
        "Every ratio is against a baseline measured in the same run (this machine is shared and noisy); "
        "see docs/performance.md for the method and where the time goes.",
        "",
        "## Machine",
        "",
        f"* {machine['cores']} cores ({machine['usable_cores']} usable), {machine['memory_gib']} GiB memory, CPU: {machine['cpu_model']}",
        f"* {machine['platform']}",
        f"* load average (1 min) at start {machine['load_average_1m_at_start']}, at end {machine.get('load_average_1m_at_end')}",
        f"* versions: {versions}",
        f"* pipelines run with: `{' '.join(results['beam_flags']) or '(in-process runner)'}`",
        f"* corpus: `{results['corpus']['root']}`; scales "
        + ", ".join(f"{name}: {v['files']} files, {v['bytes'] / 2**20:.1f} MiB" for name, v in scales.items()),
        "",
        "## Figures",
        "",
        figures_table(results),
        "",
    ]
    notes = [f for f in all_figures(results) if f.get("note")]
    if notes:
        lines += ["Notes:", ""] + [f"* {f['benchmark']}, {f['figure']}: {f['note']}" for f in notes] + [""]
    lines += [
        "## Commands",
        "",
        "Each step ran as its own process; memory is the peak over its whole process tree "
        "(PSS: shared pages split between processes), sampled every 0.25 s. "
        "`other load` is CPU used by the rest of the machine meanwhile, in cores.",
        "",
        "| step | command | wall s | CPU s | peak PSS MiB | processes | other load |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in results["commands"]:
        lines.append(
            f"| {c['step']} | `{c['command']}` | {c['wall_s']:.1f} | {c['cpu_s']:.0f} | {c['peak_pss_mb']:.0f} | "
            f"{c['processes']} | {c['other_load_cores']:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


def write(results: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JSON_FILE).write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    (out_dir / MARKDOWN_FILE).write_text(markdown(results))
