"""Measuring a command: wall time, CPU time, peak memory of its whole process tree, background load.

Every measured step of the harness is one command run in a fresh process, so
interpreter and library start-up are counted the same way for a pipeline and its
baseline, and the memory of one step cannot leak into the next. Beam's local
multi-process runner starts its SDK workers as child processes, so memory is
sampled over the whole process tree (Linux /proc, no extra dependency):

* ``peak_pss_mb``: the largest sum of PSS (proportional set size, shared pages
  split between the processes that map them) over all processes of the tree, in MiB,
  sampled every `SAMPLE_SECONDS`; this is the memory the step really holds;
* ``peak_rss_mb``: the same with RSS (counts shared libraries once per process);
* ``peak_main_process_pss_mb``: the peak PSS of the command's own process (with
  Beam's multi-process runner: the runner, which holds the data between stages).

``other_load_cores`` is the CPU the rest of the machine used during the step
(machine busy time minus the step's own CPU time, divided by wall time, in cores):
the harness records it because this machine is shared and noisy.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

SAMPLE_SECONDS = 0.25  # memory sampling interval: the ingest peak is a 1-2 s spike that a 1 s sampler can miss
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CommandFailed(RuntimeError):
    """A measured command exited with a non-zero status (message holds its log tail)."""


def _children_map() -> dict[int, list[int]]:
    """{parent pid: [child pids]} for every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    children = _children_map()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            pss = rss = 0
            for line in handle:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
            return pss, rss
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            rss = int(handle.read().split()[1]) * _PAGE_KIB
        return rss, rss
    except OSError:
        return 0, 0


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _CLOCK_TICKS


class TreeSampler(threading.Thread):
    """Samples the PSS/RSS sums of a process tree until stopped; keeps the peaks (KiB)."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_processes = 0
        self.peak_root_pss = 0  # the command's own process (Beam's runner, when it has workers)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = process_tree(self.root)
            pss = rss = 0
            for pid in pids:
                p, r = _memory_kib(pid)
                pss += p
                rss += r
                if pid == self.root:
                    self.peak_root_pss = max(self.peak_root_pss, p)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def bench_env() -> dict[str, str]:
    """Environment for measured commands: the repo on PYTHONPATH, TF quiet."""
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_command(command: list[str], log_path: Path, cwd: Path | None = None) -> dict:
    """Run `command` to completion, logging to `log_path`; returns its measurements.

    Keys: wall_s, cpu_s, peak_pss_mb, peak_rss_mb, peak_main_process_pss_mb, processes,
    other_load_cores. Raises CommandFailed on a non-zero exit.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _machine_busy_seconds()
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=bench_env())
        sampler = TreeSampler(process.pid)
        sampler.start()
        try:
            returncode = process.wait()
        finally:
            sampler.stop()
    wall = time.perf_counter() - started
    busy = _machine_busy_seconds() - busy_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"{' '.join(command)} exited with {returncode}; log {log_path}:\n{tail}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),
        "peak_pss_mb": round(sampler.peak_pss / 1024, 1),
        "peak_rss_mb": round(sampler.peak_rss / 1024, 1),
        "peak_main_process_pss_mb": round(sampler.peak_root_pss / 1024, 1),
        "processes": sampler.peak_processes,
        "other_load_cores": round(max(0.0, busy - cpu) / wall, 2) if wall > 0 else 0.0,
    }


def machine_info() -> dict:
    """Cores, memory, CPU model, OS and library versions."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    versions = {"python": sys.version.split()[0]}
    for package in ("apache-beam", "tensorflow", "tensorflow-text", "keras", "numpy", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib,
        "cpu_model": cpu_model or platform.processor(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "versions": versions,
    }
