"""Launcher start-up. `common.memoize_dofn_specs`: Beam's per-DoFn state/timer inspection is done once per
DoFn object, with the same answers (a stateful DoFn is still stateful) and the same errors.
`common.memoize_option_views`: one options view per class, sharing its values as Beam's views do."""

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from pipelines import common


class Plain(beam.DoFn):
    def process(self, element):
        yield element


class Stateful(beam.DoFn):
    COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())

    def process(self, element, count=beam.DoFn.StateParam(COUNT)):
        yield element


class Duplicated(beam.DoFn):
    COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())

    def process(self, element, a=beam.DoFn.StateParam(COUNT), b=beam.DoFn.StateParam(COUNT)):
        yield element


def test_specs_are_computed_once_per_dofn_with_the_same_answers(monkeypatch):
    calls = []
    original = userstate.get_dofn_specs
    monkeypatch.setattr(userstate, "get_dofn_specs", lambda dofn: calls.append(dofn) or original(dofn))
    common.memoize_dofn_specs()
    plain, stateful = Plain(), Stateful()
    for _ in range(5):
        assert not userstate.is_stateful_dofn(plain)
        assert userstate.is_stateful_dofn(stateful)
    assert calls == [plain, stateful]
    assert userstate.get_dofn_specs(stateful) == original(Stateful())
    common.memoize_dofn_specs()  # a second call does not wrap the wrapper
    assert userstate.get_dofn_specs.memoized


def test_beams_errors_are_still_raised_every_time(monkeypatch):
    monkeypatch.setattr(userstate, "get_dofn_specs", userstate.get_dofn_specs)  # undone after the test
    common.memoize_dofn_specs()
    for _ in range(2):
        with pytest.raises(ValueError, match="duplicate"):
            userstate.get_dofn_specs(Duplicated())


def test_option_views_are_kept_per_class_and_still_share_their_values(monkeypatch):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TypeOptions

    monkeypatch.setattr(PipelineOptions, "view_as", PipelineOptions.view_as)  # undone after the test
    common.memoize_option_views()
    common.memoize_option_views()  # a second call does not wrap the wrapper
    options = PipelineOptions(["--runner", "DirectRunner", "--direct_num_workers", "2"])
    standard = options.view_as(StandardOptions)
    assert options.view_as(StandardOptions) is standard
    assert standard.runner == "DirectRunner"
    standard.streaming = True  # a change through one view is seen by the others, as in Beam
    assert options.get_all_options()["streaming"] is True
    assert options.view_as(StandardOptions).streaming is True
    assert options.view_as(TypeOptions) is not standard
    other = PipelineOptions(["--runner", "DataflowRunner"])
    assert other.view_as(StandardOptions).runner == "DataflowRunner"
    assert other.view_as(StandardOptions).streaming is False
