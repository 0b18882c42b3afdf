"""The pipelines as Dataflow Flex Templates: the launcher entry point and each template's metadata.json.

A Flex Template passes every parameter as ``--name=value``. Value flags arrive as they are; switches
(``--overwrite``, ``--allow_unblessed``, ...) cannot take a value, so a switch parameter is "true" or
"false" and the launcher turns "true" into the bare switch and drops "false". The image sets
LSTM_PIPELINE (one image target per template, cloud/Dockerfile) and FLEX_TEMPLATE_PYTHON_PY_FILE to
this file.

metadata.json is written from the pipeline's own argparse parser, so a template's parameters, their
help texts and choices are the ones ``--help`` shows, and cannot drift from the flags:

    python -m pipelines.flex_template --write_metadata cloud/templates      # all four
    python -m pipelines.flex_template --check_metadata cloud/templates      # exit 1 if any is stale
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

PIPELINES = ("ingest", "score", "generate", "translate")
ENV_PIPELINE = "LSTM_PIPELINE"
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
# Flags whose values are Cloud Storage locations on Dataflow: the template checks the gs:// prefix.
# (--input is a folder, a file or a glob, depending on --input_format: no folder/file type for it.)
GCS_PATHS = {
    "input": None,
    "model_dir": "GCS_READ_FOLDER",
    "vocabulary": "GCS_READ_FOLDER",
    "output_dir": "GCS_WRITE_FOLDER",
}


def _parser(pipeline: str) -> argparse.ArgumentParser:
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; one of {PIPELINES}")
    return importlib.import_module(f"pipelines.{pipeline}").build_parser()


def _actions(parser: argparse.ArgumentParser):
    # argparse has no public list of its actions; _actions is the documented-by-use way to walk them.
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _is_switch(action: argparse.Action) -> bool:
    return action.nargs == 0


def _long(option: str) -> str:
    return option.lstrip("-")


def _help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default))
    return " ".join(text.split())


def parameters(pipeline: str) -> list[dict[str, Any]]:
    """One Flex Template parameter per flag of the pipeline (per option string for switches)."""
    out = []
    for action in _actions(_parser(pipeline)):
        if _is_switch(action):
            for option in action.option_strings:
                if not option.startswith("--"):
                    continue
                out.append(
                    {
                        "name": _long(option),
                        "label": _long(option).replace("_", " "),
                        "helpText": f"Switch ('true' or 'false', default 'false'): {_help(action)}",
                        "isOptional": True,
                        "regexes": ["^(true|false)$"],
                    }
                )
            continue
        name = _long(next(o for o in action.option_strings if o.startswith("--")))
        entry: dict[str, Any] = {
            "name": name,
            "label": name.replace("_", " "),
            "helpText": _help(action) or name,
            "isOptional": not action.required,
        }
        if action.choices:
            entry["regexes"] = ["^(" + "|".join(str(c) for c in action.choices) + ")$"]
        elif action.type is int:
            entry["regexes"] = ["^-?[0-9]+$"]
        elif action.type is float:
            entry["regexes"] = [r"^-?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$"]
        elif name in GCS_PATHS:
            entry["regexes"] = ["^gs://[^/]+/.+$"]
            if GCS_PATHS[name]:
                entry["paramType"] = GCS_PATHS[name]
        if action.default not in (None, argparse.SUPPRESS) and not action.required:
            entry["defaultValue"] = str(action.default)
        out.append(entry)
    return out


def metadata(pipeline: str) -> dict[str, Any]:
    parser = _parser(pipeline)
    return {
        "name": f"lstm-text-pipeline {pipeline}",
        "description": " ".join((parser.description or pipeline).split()),
        "streaming": False,
        "supportsAtLeastOnce": False,
        "supportsExactlyOnce": True,
        "defaultStreamingMode": "",
        "parameters": parameters(pipeline),
    }


def argv_for(pipeline: str, argv: list[str]) -> list[str]:
    """Template arguments (--name=value) -> the pipeline's command line (switches bare or absent)."""
    switches = {o for a in _actions(_parser(pipeline)) if _is_switch(a) for o in a.option_strings}
    out = []
    for argument in argv:
        flag, equals, value = argument.partition("=")
        if equals and flag in switches:
            if value.strip().lower() in TRUE:
                out.append(flag)
            elif value.strip().lower() not in FALSE:
                raise SystemExit(f"error: {flag} is a switch: 'true' or 'false', got {value!r}")
            continue
        out.append(argument)
    return out


def launch(argv: list[str] | None = None) -> int:
    """The Flex Template launcher's program: runs LSTM_PIPELINE's main with the translated arguments."""
    from pipelines import common

    pipeline = os.environ.get(ENV_PIPELINE, "")
    if pipeline not in PIPELINES:
        print(f"error: {ENV_PIPELINE}={pipeline!r}; the image must set one of {PIPELINES}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pipelines.{pipeline}")
    translated = argv_for(pipeline, sys.argv[1:] if argv is None else argv)
    return common.main_with_user_errors(module.run, translated)


def write_metadata(directory: str) -> list[Path]:
    written = []
    for pipeline in PIPELINES:
        path = Path(directory) / pipeline / "metadata.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metadata(pipeline), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def stale_metadata(directory: str) -> list[str]:
    """The templates whose metadata.json differs from what the pipeline's parser gives now."""
    stale = []
    for pipeline in PIPELINES:
        path = Path(directory) / pipeline / "metadata.json"
        if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != metadata(pipeline):
            stale.append(str(path))
    return stale


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("--write_metadata", "--check_metadata"):
        if sys.argv[1] == "--write_metadata":
            for path in write_metadata(sys.argv[2]):
                print(f"wrote {path}")
            return
        stale = stale_metadata(sys.argv[2])
        if stale:
            print(f"error: stale Flex Template metadata: {', '.join(stale)}; run `make templates-metadata`")
            sys.exit(1)
        print(f"Flex Template metadata up to date for {', '.join(PIPELINES)}")
        return
    sys.exit(launch())


if __name__ == "__main__":
    main()
