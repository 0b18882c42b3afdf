"""`common.memoize_dofn_specs`: Beam's per-DoFn state/timer inspection is done once per DoFn object,
with the same answers (a stateful DoFn is still stateful) and the same errors."""

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
