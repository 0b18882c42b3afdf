"""Blessing decisions on hand-made metrics, and the scoring pipeline's check of blessing.json."""

import json

import pytest

from lstm_model import bless
from pipelines import common, score
from pipelines.common import UserError


def metrics(accuracy, **others):
    return {"test": {"accuracy": accuracy, **others}}


BASELINE = {"model": "tfidf_logistic_regression", "test": {"accuracy": 0.85, "f1": 0.85}}


def test_blessed_when_it_beats_the_baseline():
    decision = bless.decide(metrics(0.88), BASELINE)
    assert decision["blessed"] is True
    assert decision["figures"] == {"model": 0.88, "baseline": 0.85, "previous": None}
    assert decision["checks"][0]["gain"] == pytest.approx(0.03)
    assert "beats baseline" in decision["reason"]


@pytest.mark.parametrize(
    ("accuracy", "margin", "blessed"),
    [(0.85, 0.0, False), (0.86, 0.01, False), (0.8601, 0.01, True), (0.80, 0.0, False), (0.90, -0.1, True)],
)
def test_baseline_margin(accuracy, margin, blessed):
    """The model must exceed baseline + margin; a tie (0.86 - 0.85 == 0.01) does not bless."""
    decision = bless.decide(metrics(accuracy), BASELINE, baseline_margin=margin)
    assert decision["blessed"] is blessed
    assert decision["margins"]["baseline"] == margin


def test_previous_model_must_also_be_beaten():
    previous = {"model_dir": "models/v1", "model_version": "lstm-v1", "metrics": metrics(0.89), "blessed": True}
    decision = bless.decide(metrics(0.895), BASELINE, previous, previous_margin=0.01)
    assert decision["blessed"] is False
    assert [c["passed"] for c in decision["checks"]] == [True, False]
    assert "does not beat previous lstm-v1" in decision["reason"]
    assert decision["figures"]["previous"] == 0.89 and decision["previous_model_version"] == "lstm-v1"
    assert bless.decide(metrics(0.91), BASELINE, previous, previous_margin=0.01)["blessed"] is True


def test_other_metric_and_unknown_metric():
    assert bless.decide(metrics(0.80, f1=0.9), BASELINE, metric="f1")["blessed"] is True
    with pytest.raises(ValueError, match="metric must be one of"):
        bless.decide(metrics(0.9), BASELINE, metric="log_loss")


def write_model(path, accuracy, fingerprint="fp1", version="lstm-1", blessed=None):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({**metrics(accuracy), "baseline": BASELINE}))
    (path / "model_info.json").write_text(json.dumps({"dataset_fingerprint": fingerprint, "model_version": version}))
    if blessed is not None:
        (path / "blessing.json").write_text(json.dumps({"blessed": blessed, "model_version": version, "reason": "r"}))
    return path


def test_load_previous_checks_comparability(tmp_path):
    previous = write_model(tmp_path / "v1", 0.87, blessed=True)
    loaded = bless.load_previous(str(previous), str(tmp_path / "v2"), "fp1")
    assert loaded["blessed"] is True and loaded["metrics"]["test"]["accuracy"] == 0.87
    with pytest.raises(UserError, match="another dataset"):
        bless.load_previous(str(previous), str(tmp_path / "v2"), "fp2")
    with pytest.raises(UserError, match="is the --model_dir being written"):
        bless.load_previous(str(previous), str(previous), "fp1")
    with pytest.raises(UserError, match="not a trained model directory"):
        bless.load_previous(str(tmp_path / "missing"), None, "fp1")


def test_bless_cli_decides_again_from_stored_metrics(tmp_path, capsys):
    previous = write_model(tmp_path / "v1", 0.87, version="lstm-1", blessed=True)
    model = write_model(tmp_path / "v2", 0.88, version="lstm-2")
    decision = bless.run(["--model_dir", str(model), "--previous_model_dir", str(previous)])
    assert decision["blessed"] is True and decision["model_version"] == "lstm-2"
    assert json.loads((model / "blessing.json").read_text())["blessed"] is True
    assert json.loads((model / "metrics.json").read_text())["blessing"]["blessed"] is True
    decision = bless.run(
        ["--model_dir", str(model), "--previous_model_dir", str(previous), "--previous_margin", "0.02"]
    )
    assert decision["blessed"] is False
    assert "NOT BLESSED" in capsys.readouterr().out


def test_scoring_checks_blessing_json(tmp_path):
    info = {"model_version": "lstm-2"}
    model = write_model(tmp_path / "m", 0.88, version="lstm-2")
    with pytest.raises(UserError, match="has no blessing.json.*pass --allow_unblessed"):
        score.check_blessing(str(model), info)
    assert score.check_blessing(str(model), info, allow_unblessed=True) is False
    common.write_json(str(model / "blessing.json"), {"blessed": False, "reason": "too weak", "model_version": "lstm-2"})
    with pytest.raises(UserError, match=r"is not blessed \(too weak\); pass --allow_unblessed"):
        score.check_blessing(str(model), info)
    common.write_json(str(model / "blessing.json"), {"blessed": True, "reason": "ok", "model_version": "lstm-1"})
    with pytest.raises(UserError, match="is for model lstm-1, not lstm-2"):
        score.check_blessing(str(model), info)
    common.write_json(str(model / "blessing.json"), {"blessed": True, "reason": "ok", "model_version": "lstm-2"})
    assert score.check_blessing(str(model), info) is True
