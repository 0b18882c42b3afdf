"""Data validation with Great Expectations (GX Core 1.x) inside the Beam pipelines.

Suites live as JSON files in `schemas/expectations/` (one for raw rows, one for
the cleaned dataset, one for scored output). Each expectation has

* ``scope``: ``rows`` -- a column-values expectation run by GX on pandas batches
  of rows inside the pipeline (`ValidateRows`; one GX validation per batch of up
  to 10,000 rows, never per element); the per-batch results are combined per run
  by adding their element and unexpected counts and keeping a few failing rows as
  examples. ``run`` -- an expectation on the run's aggregate figures (quarantine
  rate, duplicate rate, label balance, OOV rate, ...), run by GX on a one-row
  table after the pipeline has computed them.
* ``severity``: ``critical`` ends the run with a non-zero exit and a one-line
  message naming the expectation and the observed value; ``warning`` is reported.
* kwargs may name a threshold as ``"$option_name"``; its value comes from the
  pipeline's command-line options, so thresholds are options.

Each run writes ``validation.json`` and a static ``validation.html`` page
(every expectation, pass/fail, observed value, threshold, example failing rows).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apache_beam as beam

from pipelines import common

LOGGER = logging.getLogger("lstm_pipeline")
SUITES_DIR = Path(__file__).resolve().parent.parent / "schemas" / "expectations"
VALIDATION_JSON = "validation.json"
VALIDATION_HTML = "validation.html"
# Rows per GX validation call inside the pipeline (fewer at the end of a bundle). A call costs ~0.08 s
# whatever its size up to ~20k rows, so the batches are full-size from the first (BatchElements would
# otherwise start at 100 rows and double: 65 calls for ingest's 2 x 100k rows instead of ~22). 10k rather
# than 20k: a worker's memory peak grows with the batch, and 10k rows is a size that even small corpora
# fill (1/4 of aclImdb gives a worker ~12k rows), so that peak stops growing with the corpus early.
ROWS_PER_BATCH = 10_000
MAX_EXAMPLES = 10  # failing rows kept per expectation for the report

# Characters that should not be in clean text: control (not whitespace), format/invisible.
_NON_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


class ValidationFailed(common.UserError):
    """A critical expectation failed (the message names it and its observed value)."""


def load_suite(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A suite from schemas/expectations/NAME.json with "$option" thresholds filled in."""
    path = SUITES_DIR / f"{name}.json"
    suite = json.loads(path.read_text())
    for expectation in suite["expectations"]:
        for key, value in list(expectation["kwargs"].items()):
            if isinstance(value, str) and value.startswith("$"):
                option = value[1:]
                if option not in options:
                    raise ValueError(f"{path.name}: threshold {value} is not an option of this pipeline")
                expectation["kwargs"][key] = options[option]
                expectation.setdefault("thresholds_from", {})[key] = "--" + option
        if expectation.get("severity") not in ("critical", "warning"):
            raise ValueError(f"{path.name}: severity of {expectation['type']} must be critical or warning")
        if expectation.get("scope") not in ("rows", "run"):
            raise ValueError(f"{path.name}: scope of {expectation['type']} must be rows or run")
    return suite


def _gx_suite(name: str, expectations: list[dict[str, Any]]):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=name)
    for index, expectation in enumerate(expectations):
        configuration = ExpectationConfiguration(
            type=expectation["type"],
            kwargs=expectation["kwargs"],
            meta={"index": index, "severity": expectation["severity"]},
        )
        suite.add_expectation_configuration(configuration)
    return suite


class _GX:
    """An ephemeral GX context with one pandas asset; validates DataFrames against a suite."""

    def __init__(self, suite_name: str, expectations: list[dict[str, Any]]):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)  # its INFO lines are noise here
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("pipeline").add_dataframe_asset(name=suite_name)
        self.batch_definition = asset.add_batch_definition_whole_dataframe("batch")
        self.suite = _gx_suite(suite_name, expectations)
        common.exit_fast_in_sdk_worker()

    def validate(self, frame) -> list[dict[str, Any]]:
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(self.suite, result_format={"result_format": "COMPLETE"})
        return result.to_json_dict()["results"]


# ---------------------------------------------------------------------- row-level, in Beam
def raw_row_features(
    record: dict[str, Any], encoding: str = "utf-8", fallback_encoding: str | None = None
) -> dict[str, Any]:
    """Validation columns of a RawRecord: id, text_chars, label, non_printable_share, replacement_share.

    Raw bytes are decoded as the checks decode them (`transforms.decode_text`): the record's detected
    encoding (--encoding auto), else `encoding`, then `fallback_encoding`; bytes neither decodes are
    read with U+FFFD for what fails, which replacement_share then counts.
    """
    from pipelines.transforms import decode_text, resolve_label
    from schemas import names

    text = record.get("text")
    if isinstance(text, bytes):
        encoding = record.get("encoding") or ("utf-8" if encoding == "auto" else encoding)
        decoded, _, failure = decode_text(text, encoding, fallback_encoding)
        text = text.decode(encoding, errors="replace") if failure else decoded
    if not isinstance(text, str):
        text = None
    label = record.get("label")
    label_name = None
    if label is not None:
        resolved = resolve_label(label)
        label_name = names.LABELS[resolved] if resolved is not None else f"<{str(label)[:30]}>"
    length = len(text) if text is not None else None
    return {
        "id": record.get("id"),
        "text_chars": length,
        "label": label_name,
        "non_printable_share": (len(_NON_PRINTABLE.findall(text)) / length) if length else 0.0,
        "replacement_share": (text.count("\ufffd") / length) if length else 0.0,
    }


class _ValidateBatchDoFn(beam.DoFn):
    def __init__(self, suite_name: str, expectations: list[dict[str, Any]]):
        self.suite_name = suite_name
        self.expectations = expectations

    def setup(self):
        self.gx = _GX(self.suite_name, self.expectations)

    def process(self, rows: list[dict[str, Any]]):
        import pandas as pd

        frame = pd.DataFrame(rows)
        partial = {}
        for result in self.gx.validate(frame):
            index = result["expectation_config"]["meta"]["index"]
            outcome = result["result"]
            unexpected_rows = outcome.get("unexpected_index_list") or []
            column = self.expectations[index]["kwargs"].get("column")
            examples = [
                {"id": str(frame.at[i, "id"]), "value": _jsonable(frame.at[i, column]) if column in frame else None}
                for i in unexpected_rows[:MAX_EXAMPLES]
            ]
            partial[index] = {
                "element_count": int(outcome.get("element_count", len(frame))),
                "missing_count": int(outcome.get("missing_count") or 0),
                "unexpected_count": int(outcome.get("unexpected_count") or 0),
                "examples": examples,
                "exception": result.get("exception_info", {}).get("exception_message")
                if result.get("exception_info", {}).get("raised_exception")
                else None,
            }
        yield partial


class _MergeRowResults(beam.CombineFn):
    """Adds per-batch GX counts; keeps the examples with the smallest ids (deterministic)."""

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, partial):
        return self.merge_accumulators([accumulator, partial])

    def merge_accumulators(self, accumulators):
        merged: dict[int, dict[str, Any]] = {}
        for accumulator in accumulators:
            for index, part in accumulator.items():
                target = merged.setdefault(
                    index,
                    {"element_count": 0, "missing_count": 0, "unexpected_count": 0, "examples": [], "exception": None},
                )
                for key in ("element_count", "missing_count", "unexpected_count"):
                    target[key] += part[key]
                target["examples"] = sorted(target["examples"] + part["examples"], key=lambda e: e["id"])[:MAX_EXAMPLES]
                target["exception"] = target["exception"] or part["exception"]
        return merged

    def extract_output(self, accumulator):
        return {str(index): value for index, value in accumulator.items()}


class ValidateRows(beam.PTransform):
    """row dict (validation columns, including "id") -> one {expectation index: combined counts}.

    Runs the suite's ``rows``-scope expectations with GX on pandas batches.
    """

    def __init__(self, suite: dict[str, Any]):
        super().__init__()
        self.suite_name = suite["name"]
        self.expectations = [e for e in suite["expectations"] if e["scope"] == "rows"]

    def expand(self, rows):
        return (
            rows
            | "Batch" >> beam.BatchElements(min_batch_size=ROWS_PER_BATCH, max_batch_size=ROWS_PER_BATCH)
            | "GX" >> beam.ParDo(_ValidateBatchDoFn(self.suite_name, self.expectations))
            | "Combine" >> beam.CombineGlobally(_MergeRowResults())
        )


# ---------------------------------------------------------------------- evaluation and report
def _jsonable(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, str):
        return value[:200]
    return value


def _describe(expectation: dict[str, Any]) -> str:
    kwargs = {k: v for k, v in expectation["kwargs"].items() if k not in ("column",)}
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def evaluate(
    suite: dict[str, Any], row_results: dict[str, Any] | None, run_metrics: dict[str, Any] | None
) -> dict[str, Any]:
    """Combine row-level results (from ValidateRows) and run GX on the run metrics; returns the report dict."""
    import pandas as pd

    rows_expectations = [e for e in suite["expectations"] if e["scope"] == "rows"]
    run_expectations = [e for e in suite["expectations"] if e["scope"] == "run"]
    entries = []
    for index, expectation in enumerate(rows_expectations):
        counts = (row_results or {}).get(
            str(index), {"element_count": 0, "missing_count": 0, "unexpected_count": 0, "examples": []}
        )
        nonmissing = counts["element_count"] - counts["missing_count"]
        share = counts["unexpected_count"] / nonmissing if nonmissing else 0.0
        mostly = float(expectation["kwargs"].get("mostly", 1.0))
        success = counts.get("exception") is None and (1.0 - share) >= mostly - 1e-12
        entries.append(
            {
                **_entry_head(expectation),
                "success": success,
                "observed": f"{counts['unexpected_count']} of {nonmissing} rows unexpected ({share:.2%}); must be at most {1 - mostly:.2%}",
                "observed_value": share,
                "element_count": counts["element_count"],
                "unexpected_count": counts["unexpected_count"],
                "examples": counts["examples"],
                "error": counts.get("exception"),
            }
        )
    if run_expectations:
        frame = pd.DataFrame([{k: (None if v is None else v) for k, v in (run_metrics or {}).items()}])
        results = _GX(suite["name"] + "_run", run_expectations).validate(frame)
        for result in results:
            expectation = run_expectations[result["expectation_config"]["meta"]["index"]]
            raised = result.get("exception_info", {}).get("raised_exception")
            observed = _jsonable(result["result"].get("observed_value"))
            if observed is None and "unexpected_list" in result["result"]:
                observed = _jsonable((result["result"].get("unexpected_list") or [None])[0])
            column = expectation["kwargs"].get("column")
            if column is not None and (run_metrics or {}).get(column) is not None:
                observed = _jsonable(run_metrics[column])
            entries.append(
                {
                    **_entry_head(expectation),
                    "success": bool(result["success"]) and not raised,
                    "observed": f"{column} = {observed}",
                    "observed_value": observed,
                    "examples": [],
                    "error": result["exception_info"].get("exception_message") if raised else None,
                }
            )
    failed = [e for e in entries if not e["success"]]
    return {
        "suite": suite["name"],
        "description": suite.get("description", ""),
        "success": not failed,
        "critical_failures": [e for e in failed if e["severity"] == "critical"],
        "warnings": [e for e in failed if e["severity"] == "warning"],
        "expectations": entries,
        "run_metrics": {k: _jsonable(v) for k, v in (run_metrics or {}).items()},
    }


def _entry_head(expectation: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": expectation["type"],
        "column": expectation["kwargs"].get("column"),
        "scope": expectation["scope"],
        "severity": expectation["severity"],
        "description": expectation.get("description", ""),
        "kwargs": expectation["kwargs"],
        "thresholds_from": expectation.get("thresholds_from", {}),
        "threshold": _describe(expectation),
    }


def write_report(
    output_dir: str, title: str, reports: list[dict[str, Any]], extra_sections: Iterable[tuple[str, str]] = ()
) -> None:
    """Writes validation.json and validation.html for a list of evaluated suites."""
    payload = {"title": title, "success": all(r["success"] for r in reports), "suites": reports}
    common.write_json(common.join(output_dir, VALIDATION_JSON), payload)
    with common.FileSystems.create(common.join(output_dir, VALIDATION_HTML)) as handle:
        handle.write(render_html(title, reports, extra_sections).encode("utf-8"))


def render_html(title: str, reports: list[dict[str, Any]], extra_sections: Iterable[tuple[str, str]] = ()) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>" + esc(title) + "</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2em}"
        "th,td{border:1px solid #ccc;padding:6px 8px;vertical-align:top;text-align:left;font-size:14px}"
        "th{background:#f3f3f3}.pass{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}"
        ".warn{color:#9a6700;font-weight:bold}code{font-size:12px}.ex{font-size:12px;color:#555}"
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for report in reports:
        failed_critical = len(report["critical_failures"])
        warned = len(report["warnings"])
        status = "fail" if failed_critical else ("warn" if warned else "pass")
        label = {
            "fail": f"FAILED ({failed_critical} critical)",
            "warn": f"passed with {warned} warning(s)",
            "pass": "passed",
        }[status]
        parts.append(f"<h2>Suite <code>{esc(report['suite'])}</code>: <span class='{status}'>{esc(label)}</span></h2>")
        parts.append(f"<p>{esc(report['description'])}</p>")
        parts.append(
            "<table><tr><th>status</th><th>expectation</th><th>column</th><th>scope</th><th>severity</th>"
            "<th>threshold</th><th>observed</th><th>failing rows (examples)</th></tr>"
        )
        for entry in report["expectations"]:
            if entry["success"]:
                cell = "<span class='pass'>PASS</span>"
            elif entry["severity"] == "critical":
                cell = "<span class='fail'>FAIL</span>"
            else:
                cell = "<span class='warn'>WARN</span>"
            examples = "<br>".join(
                f"<span class='ex'>{esc(str(e['id']))}: {esc(str(e['value'])[:120])}</span>" for e in entry["examples"]
            )
            options = ", ".join(f"{k} from {v}" for k, v in entry["thresholds_from"].items())
            parts.append(
                f"<tr><td>{cell}</td><td><code>{esc(entry['type'])}</code><br><small>{esc(entry['description'])}</small></td>"
                f"<td>{esc(str(entry['column']))}</td><td>{esc(entry['scope'])}</td><td>{esc(entry['severity'])}</td>"
                f"<td>{esc(entry['threshold'])}<br><small>{esc(options)}</small></td>"
                f"<td>{esc(str(entry['observed']))}{'<br><b>error:</b> ' + esc(entry['error']) if entry.get('error') else ''}</td>"
                f"<td>{examples}</td></tr>"
            )
        parts.append("</table>")
        if report.get("run_metrics"):
            parts.append("<details><summary>Run metrics validated</summary><table>")
            for key, value in report["run_metrics"].items():
                parts.append(f"<tr><td>{esc(key)}</td><td>{esc(str(value))}</td></tr>")
            parts.append("</table></details>")
    for heading, body in extra_sections:
        parts.append(f"<h2>{esc(heading)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def raise_on_critical(reports: list[dict[str, Any]], report_path: str) -> None:
    """Raise ValidationFailed naming the first critical failure and its observed value."""
    for report in reports:
        for failure in report["critical_failures"]:
            raise ValidationFailed(
                f"validation failed: {failure['type']} on {failure['column']} ({report['suite']}): observed "
                f"{failure['observed']}; limit {failure['threshold']}; see {report_path}"
            )


def log_warnings(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        for warning in report["warnings"]:
            LOGGER.warning(
                "validation warning: %s on %s (%s): %s",
                warning["type"],
                warning["column"],
                report["suite"],
                warning["observed"],
            )
