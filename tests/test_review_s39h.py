"""Review s39h of the session's late merges (forwarding's careful encoding, on-call pages)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.cell_values import cell_number, real_numbers
from monitor.events import FEEDBACK, PREDICTION, parse_event, read_label
from monitor.forwarding import encode_event


def _prediction(inputs, embedding=None, outputs=(1,)):
    return (PREDICTION, 1.0, inputs, list(outputs) if isinstance(outputs, tuple) else outputs, None, None, None, None,
            embedding)


def test_a_nanosecond_time_among_list_rows_is_forwarded_as_the_cell_in_process_reads() -> None:
    # numpy's datetime64[ns] (or timedelta64[ns]) as one cell of rows given as lists: tolist() wrote it
    # as an integer of nanoseconds, which the sidecar's numeric feature read as a number a billion times
    # too large, silently, where in process the cell is its seconds (d673835 caught arrays of them, not
    # one among a row's values). It is encoded carefully now: the datetime as its text (read as the
    # same seconds), the duration dropping its call as a timedelta of another unit does.
    when = np.datetime64("2024-01-02T03:04:05", "ns")
    sent = parse_event(json.loads(encode_event(_prediction([[when, 1.0]]))), 0.0, forwarded=True).event[2]
    assert cell_number(sent[0][0]) == cell_number(when) == 1704164645.0
    assert sent[0][1] == 1.0
    obj_rows = np.array([[when, 2.0]], dtype=object)  # an object array's tolist() keeps the numpy value too
    sent = parse_event(json.loads(encode_event(_prediction(obj_rows))), 0.0, forwarded=True).event[2]
    assert cell_number(sent[0][0]) == cell_number(when)
    assert cell_number(np.timedelta64(5, "ns")) == 5e-9
    with pytest.raises(TypeError, match="inputs: a numpy.timedelta64 value"):
        encode_event(_prediction([[np.timedelta64(5, "ns"), 1.0]]))


def test_nanosecond_times_outside_the_inputs_are_still_sent_as_their_integers() -> None:
    # Outside the inputs numpy's [ns] times are read in process by a float64 cast (the embedding, the
    # outputs) or as the value (a label), as their integers: sent so before and still.
    when = np.datetime64("2024-01-02T03:04:05", "ns")
    emb = np.array([when, when])
    obj = json.loads(encode_event(_prediction([[1.0]], embedding=emb)))
    assert np.array_equal(real_numbers(obj["embedding"]), real_numbers(emb))
    obj = json.loads(encode_event(_prediction([[1.0]], embedding=[when, 1.0])))
    assert np.array_equal(real_numbers(obj["embedding"]), real_numbers([when, 1.0]))
    obj = json.loads(encode_event((FEEDBACK, 1.0, ["a", "b"], [when, np.datetime64("NaT", "ns")])))
    assert obj["labels"] == [when.astype(np.int64).item(), None]
    assert read_label(obj["labels"][0], True) == read_label(when, True)
    obj = json.loads(encode_event(_prediction([[1.0]], outputs=np.array([when]))))
    assert obj["outputs"] == [when.astype(np.int64).item()]
    # and an array of them as the inputs is still dropped, with its reason
    with pytest.raises(TypeError, match="inputs: .* an array of numpy's times"):
        encode_event(_prediction(np.array([[when]])))
    with pytest.raises(TypeError, match="inputs: .* an array of numpy's times"):
        encode_event(_prediction([np.array([when])]))


def test_a_numpy_time_with_a_fraction_of_a_second_is_forwarded_not_dropped() -> None:
    # In process numpy's datetime64 with milliseconds is read as seconds one float rounding off its
    # text's reading (2024-01-02T03:04:05.123: 1704164645.1230001 and 1704164645.123); the careful
    # encoding asked for the same float and dropped the whole call as unserializable. Readings within
    # a few units in the last place are the same number.
    for when in (np.datetime64("2024-01-02T03:04:05.123", "ms"), np.datetime64("2024-01-02T03:04:05.250000000", "ns")):
        sent = json.loads(encode_event(_prediction([[when, 1.0]])))["inputs"][0][0]
        assert cell_number(sent) == pytest.approx(cell_number(when), rel=1e-15, abs=0.0)
    with pytest.raises(TypeError):  # a Fraction is still no text (a number to one feature, "1/2" to another)
        import fractions
        encode_event(_prediction([[fractions.Fraction(1, 2)]]))
