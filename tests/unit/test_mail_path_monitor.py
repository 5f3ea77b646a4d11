"""The tunnel probe's hysteresis: a good probe counts at once, a failing one after a run."""

from __future__ import annotations

from daemon.monitor import MailPathMonitor, MailPathVerdict


def feed(mon: MailPathMonitor, results: list[bool]) -> list[MailPathVerdict | None]:
    return [mon.observe(ok, "banner: timed out") for ok in results]


def test_the_first_good_probe_is_reported_at_once() -> None:
    assert feed(MailPathMonitor(fail_after=2), [True]) == [MailPathVerdict(True)]


def test_one_failure_below_fail_after_is_not_an_alarm() -> None:
    assert feed(MailPathMonitor(fail_after=2), [True, False, True]) == [
        MailPathVerdict(True), None, None]


def test_fail_after_failures_in_a_row_report_failing_with_the_detail() -> None:
    assert feed(MailPathMonitor(fail_after=3), [True, False, False, False]) == [
        MailPathVerdict(True), None, None, MailPathVerdict(False, "banner: timed out")]


def test_failing_is_reported_once_however_long_it_lasts() -> None:
    verdicts = feed(MailPathMonitor(fail_after=2), [False] * 6)
    assert [v for v in verdicts if v is not None] == [
        MailPathVerdict(False, "banner: timed out")]


def test_a_good_probe_after_failing_is_reported_at_once() -> None:
    verdicts = feed(MailPathMonitor(fail_after=1), [False, True])
    assert verdicts == [MailPathVerdict(False, "banner: timed out"), MailPathVerdict(True)]


def test_fail_after_one_reports_the_first_failure() -> None:
    assert feed(MailPathMonitor(fail_after=1), [False]) == [
        MailPathVerdict(False, "banner: timed out")]


def test_a_failure_run_interrupted_by_a_good_probe_starts_again() -> None:
    verdicts = feed(MailPathMonitor(fail_after=2), [True, False, True, False, False])
    assert verdicts[-1] == MailPathVerdict(False, "banner: timed out")
    assert verdicts[1:4] == [None, None, None]
