"""The bookkeeping of the evaluation benchmarks, on hand-made alarm sequences.

``benchmarks/eval_confidence.py`` reports detection delays and false alarms; before this test its
streams dropped every alarm raised before the shift's onset (neither a false alarm nor a
detection) and evaluated the false-alarm streams only after their first 600 events. These tests
pin what each alarm counts as, without running a stream.
"""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark

ev = load_benchmark("eval_confidence")

EVALS = list(range(25, 2625, 25))  # every 25 events of 600 unshifted + 2,000 shifted ones
ONSET = 600


def test_an_alarm_before_the_onset_is_a_false_alarm_and_never_the_detection() -> None:
    book = ev.book_alarms(EVALS, [100, 575, 600, 625, 650], ONSET)
    assert (book.pre_alarms, book.post_alarms) == (3, 2)
    # the evaluation at clock 600 has seen events 0..599, all unshifted: still before the onset
    assert book.delay == 25
    assert book.pre_evaluations == 24 and book.post_evaluations == len(EVALS) - 24


def test_the_delay_is_the_first_alarm_after_the_onset_whatever_the_order_given() -> None:
    book = ev.book_alarms(EVALS, [1000, 700], ONSET)
    assert book.delay == 100 and book.pre_alarms == 0 and book.post_alarms == 2


def test_only_alarms_before_the_onset_leave_the_stream_undetected() -> None:
    book = ev.book_alarms(EVALS, [25, 50, 600], ONSET)
    assert book.delay is None and book.pre_alarms == 3 and book.post_alarms == 0


def test_every_alarm_of_an_unshifted_stream_is_false_and_every_evaluation_counts() -> None:
    book = ev.book_alarms(EVALS, [25, 600, 2600], None)
    assert (book.pre_alarms, book.pre_evaluations) == (3, len(EVALS))
    assert (book.post_alarms, book.post_evaluations, book.delay) == (0, 0, None)


def test_an_alarm_at_a_clock_never_evaluated_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="match no evaluation"):
        ev.book_alarms(EVALS, [610], ONSET)


def test_the_delay_cell_states_alarms_before_the_onset_beside_the_delay() -> None:
    books = [ev.book_alarms(EVALS, a, ONSET) for a in ([625], [650, 25], [700])]
    cell = ev.delay_cell(books, 2000)
    assert cell.startswith("50 (3/3)")
    assert "1 alarm before the onset** (1/3 seeds)" in cell


def test_the_delay_cell_names_a_minority_detection_and_no_detection() -> None:
    minority = [ev.book_alarms(EVALS, a, ONSET) for a in ([625], [], [])]
    assert ev.delay_cell(minority, 2000) == "> 2000 (1/3)"
    early_only = [ev.book_alarms(EVALS, a, ONSET) for a in ([100], [], [])]
    assert ev.delay_cell(early_only, 2000) == "not detected; **1 alarm before the onset** (1/3 seeds)"


def test_the_false_alarm_cell_sums_alarms_and_evaluations_before_the_onset() -> None:
    books = [ev.book_alarms(EVALS, [25, 50, 650], ONSET), ev.book_alarms(EVALS, [2600], None)]
    assert ev.false_alarm_cell(books) == f"3 / {24 + len(EVALS)}"


def test_a_section_new_to_the_results_file_goes_after_the_one_before_it() -> None:
    old = "# T\n\nhead\n\n## A\n\na\n\n## Old false alarms\n\nx\n\n## B\n\nb\n"
    new = "# T\n\nhead\n\n## A\n\na2\n\n## False alarms\n\nf\n"
    merged = ev._splice(old, new)
    titles = [ln for ln in merged.splitlines() if ln.startswith("## ")]
    assert titles == ["## A", "## False alarms", "## Old false alarms", "## B"]
    assert "a2" in merged and "\na\n" not in merged


LABELS = (("model", "m"),)
T0 = 1_000.0


def test_a_firing_whose_pending_began_before_the_onset_is_a_false_alarm() -> None:
    book = ev.book_transitions([("A", LABELS, "pending", T0 - 300), ("A", LABELS, "firing", T0 + 600)], T0)
    assert book.early == ["A"] and book.fired == {}


def test_a_firing_from_a_condition_after_the_onset_is_a_detection_in_minutes() -> None:
    trs = [("A", LABELS, "pending", T0 + 60), ("A", LABELS, "firing", T0 + 960), ("B", LABELS, "firing", T0 + 120)]
    book = ev.book_transitions(trs, T0)
    assert book.fired == {"A": 16.0, "B": 2.0} and book.early == []


def test_an_early_alarm_that_resolves_and_fires_again_after_the_onset_counts_twice_apart() -> None:
    trs = [("A", LABELS, "firing", T0 - 60), ("A", LABELS, "inactive", T0 - 30),
           ("A", LABELS, "pending", T0 + 30), ("A", LABELS, "firing", T0 + 330)]
    book = ev.book_transitions(list(reversed(trs)), T0)  # any order: booked in time order
    assert book.early == ["A"] and book.fired == {"A": 5.5}


def test_a_pending_that_resolves_is_no_alarm_and_instances_are_followed_apart() -> None:
    other = (("estimator", "atc"),)
    trs = [("A", LABELS, "pending", T0 - 60), ("A", LABELS, "inactive", T0 + 30),
           ("A", other, "pending", T0 + 60), ("A", other, "firing", T0 + 120)]
    book = ev.book_transitions(trs, T0)
    assert book.early == [] and book.fired == {"A": 2.0}


def test_an_unknown_state_is_refused_with_the_states_named() -> None:
    with pytest.raises(ValueError, match="pending, firing, inactive"):
        ev.book_transitions([("A", LABELS, "resolved", T0)], T0)


def test_each_calibration_estimator_is_judged_against_its_own_target() -> None:
    """Over-confident by a constant 0.1 in one half of the confidence range and calibrated in the
    other: the 15-bin ECE is the mean absolute gap (0.05), the binned L2 gap sqrt(0.5 * 0.01)."""
    import numpy as np

    conf = np.repeat(np.linspace(0.5, 0.99, 15), 10_000)  # one confidence per equal-width bin above 0.5
    acc = np.where(conf >= 0.75, conf - 0.1, conf)
    share = float(np.mean(conf >= 0.75))
    t = ev.large_sample_truths(conf, acc)
    assert t[ev.ECE_EW] == pytest.approx(0.1 * share, abs=1e-12)
    assert t[ev.L2_PLUGIN] == t[ev.L2_DEBIASED] == pytest.approx(np.sqrt(share * 0.01), abs=1e-12)
    assert t["unbinned L2 CE"] == pytest.approx(np.sqrt(share * 0.01), abs=1e-12)
    # a gap that changes sign within an equal-mass bin: binning can only lower the L2 error
    wavy = np.clip(conf + 0.05 * np.sign(np.sin(np.arange(conf.size))), 0, 1)
    t2 = ev.large_sample_truths(conf, wavy)
    assert t2[ev.L2_DEBIASED] < t2["unbinned L2 CE"]


def test_a_rule_whose_metric_never_had_a_series_cannot_fire() -> None:
    present = {"monitor_output_repeat_ratio", "monitor_accuracy_ratio", "monitor_reference_accuracy_ratio"}
    assert not ev.can_have_series("monitor_output_repeat_ratio - monitor_output_repeat_reference_ratio > 0.1", present)
    assert ev.can_have_series("monitor_reference_accuracy_ratio - monitor_accuracy_ratio > 0.05", present)
    # either side of `or` suffices; `unless` needs its left side only; absent() needs nothing
    assert ev.can_have_series("monitor_missing_ratio > 0.1 or monitor_accuracy_ratio < 0.5", present)
    assert not ev.can_have_series("monitor_missing_ratio > 0.1 unless monitor_accuracy_ratio < 0.5", present)
    assert ev.can_have_series("absent(monitor_missing_ratio)", present)
    assert not ev.can_have_series("max by (model) (rate(monitor_missing_total[5m])) > 0", present)


def test_the_rules_that_cannot_fire_are_named_with_the_reason() -> None:
    rules = [("ModelOutputsRepeated", "monitor_output_repeat_ratio - monitor_output_repeat_reference_ratio > 0.1", 900.0),
             ("ModelAccuracyDrop", "monitor_reference_accuracy_ratio - monitor_accuracy_ratio > 0.05", 900.0),
             ("SlowRule", "monitor_accuracy_ratio < 0.5", 3 * 3600.0)]
    why = ev.rules_that_cannot_fire(rules, {"monitor_output_repeat_ratio", "monitor_accuracy_ratio",
                                            "monitor_reference_accuracy_ratio"}, 2 * 3600.0)
    assert set(why) == {"ModelOutputsRepeated", "SlowRule"}
    assert why["ModelOutputsRepeated"] == "needs `monitor_output_repeat_reference_ratio`"
    assert "`for:` 180 min, longer than the 120 min after the onset" == why["SlowRule"]
    note = ev.unreachable_note({("ModelOutputsRepeated", why["ModelOutputsRepeated"]): ["digits", "wine"]}, 3)
    assert "**cannot fire**" in note and "neither silent nor missed" in note and ": digits, wine)" in note


def test_a_signal_no_rule_tests_is_not_reached_rather_than_not_detected() -> None:
    books = [ev.book_alarms(EVALS, [], ONSET)]
    assert ev.delay_cell(books, 2000) == "not detected"
    assert ev.delay_cell(books, 2000, rule=False) == "not reached"
    assert "accuracy drop (cbpe)" in ev.NO_RULE and "accuracy drop (atc)" not in ev.NO_RULE


def test_each_section_says_which_run_it_comes_from_and_old_ones_say_they_are_undated() -> None:
    new = ev._stamp_sections("# T\n\nhead\n\n## A\n\na2\n", "_Section run 2026-12-03 on X, load average 1.0._")
    assert new.endswith("## A\n\na2\n\n_Section run 2026-12-03 on X, load average 1.0._\n")
    merged = ev._splice("# T\n\nhead\n\n## A\n\na\n\n## B\n\nb\n", new)
    a, b = merged.split("\n## ")[1:]
    assert "a2" in a and "2026-12-03 on X" in a and ev.UNDATED not in a
    assert b.rstrip().endswith(ev.UNDATED)
    again = ev._splice(merged, new)  # a section marked undated is not marked twice
    assert again.count(ev.UNDATED) == 1
