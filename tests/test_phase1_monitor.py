"""The shared Phase 1 monitor loop, its back-off (checked with a fake clock), the local time
estimate, terminal statuses, unfinished jobs, adapter lineage and duration formatting."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import CancelledError
from cognitivetwin_core.phase1.adapter_archive import read_lineage, write_lineage
from cognitivetwin_core.phase1.estimates import estimate_local_seconds, parameter_count, tokens_per_second
from cognitivetwin_core.phase1.jobs import JobRecord, JobUpdate, is_terminal, unfinished_jobs
from cognitivetwin_core.phase1.monitor import Backoff, follow, is_transient
from cognitivetwin_core.phase1.together_errors import TogetherServiceError


def _cancelled() -> Cancellation:
    cancellation = Cancellation()
    cancellation.cancel()
    return cancellation


def _service_error(kind):
    return TogetherServiceError(f"{kind} trouble", kind=kind)


class Script:
    """A job whose polls return (or raise) the given items in order."""

    def __init__(self, *items):
        self.items = list(items)
        self.polls = 0

    def __call__(self):
        self.polls += 1
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def test_backoff_quick_while_moving_slower_while_idle_doubling_on_failures():
    sleeps = []
    script = Script(
        JobUpdate("j", "running", step=1),
        JobUpdate("j", "running", step=1),  # no change: 1.5x
        JobUpdate("j", "running", step=1),  # 1.5x again, capped
        _service_error("rate_limit"),  # doubles
        JobUpdate("j", "running", step=2),  # moved: back to base
        JobUpdate("j", "running", step=2, new_events=[{"type": "x"}]),  # an event counts as moving
        JobUpdate("j", "completed", step=3),
    )
    seen = []
    final = follow(
        script,
        backoff=Backoff(base=2.0, maximum=4.0),
        on_update=seen.append,
        retry_on=(TogetherServiceError,),
        sleep=sleeps.append,
    )
    assert final.status == "completed"
    assert sleeps == [2.0, 3.0, 4.0, 4.0, 2.0, 2.0]
    assert [u.step for u in seen] == [1, 1, 1, 2, 2, 3]


def test_gives_up_after_max_failures_and_on_non_transient_errors():
    sleeps = []
    script = Script(*[_service_error("server") for _ in range(4)])
    with pytest.raises(TogetherServiceError):
        follow(
            script, backoff=Backoff(1.0, 100.0, max_failures=3), retry_on=(TogetherServiceError,), sleep=sleeps.append
        )
    assert sleeps == [2.0, 4.0, 8.0] and script.polls == 4

    script = Script(_service_error("auth"))
    with pytest.raises(TogetherServiceError):
        follow(script, backoff=Backoff(), retry_on=(TogetherServiceError,), sleep=sleeps.append)
    assert is_transient(_service_error("timeout")) and not is_transient(ValueError())


def test_a_cancellation_raises_or_hands_over_to_on_stop():
    with pytest.raises(CancelledError, match="keeps running"):
        follow(Script(), backoff=Backoff(), cancellation=_cancelled(), stop_message="It keeps running.")

    stops = []
    script = Script(JobUpdate("j", "running", step=1), JobUpdate("j", "cancelled"))
    final = follow(
        script,
        backoff=Backoff(0.1, 0.1),
        cancellation=_cancelled(),
        on_stop=lambda: stops.append(1),
        sleep=lambda s: None,
    )
    assert final.status == "cancelled" and stops == [1]  # asked once, then followed to the end


def test_terminal_and_unfinished():
    assert all(
        is_terminal(s) for s in ("completed", "cancelled", "error", "user_error", "create_failed", "interrupted")
    )
    assert not any(is_terminal(s) for s in ("running", "pending", "queued", None))
    records = [
        JobRecord("a", backend="together", status="running"),
        JobRecord("b", backend="together", status="completed"),
        JobRecord("intent-c", backend="together", status="creating"),
        JobRecord("d", backend="local", status="running"),
        JobRecord("e", backend="together", status="create_failed"),
    ]
    assert unfinished_jobs(records, "together") == ["a"]
    assert unfinished_jobs(records, "local") == ["d"]


def test_estimate_from_config_and_measured(tmp_path):
    folder = tmp_path / "base"
    folder.mkdir()
    config = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert parameter_count(str(folder)) == 2 * (4 * 64 * 64 + 3 * 64 * 128) + 100 * 64
    seconds, how = estimate_local_seconds(1000, str(folder), measured_tokens_per_second=50.0)
    assert seconds == 20.0 and "measured" in how
    guessed, how = estimate_local_seconds(1000, str(folder))
    assert guessed > 0 and "rough guess" in how
    assert tokens_per_second(500, 10.0) == 50.0 and tokens_per_second(0, 10.0) is None


def test_lineage_round_trip(tmp_path):
    assert read_lineage(tmp_path) is None
    write_lineage(tmp_path, {"trained_tokens": 12})
    assert read_lineage(tmp_path) == {"trained_tokens": 12}
    (tmp_path / "lineage.json").write_text("[1, 2]", encoding="utf-8")
    assert read_lineage(tmp_path) is None


@pytest.mark.parametrize(
    ("seconds", "words", "clock"),
    [
        (None, "–", "–"),
        (float("nan"), "–", "–"),
        (-1, "–", "–"),
        (12.4, "12s", "0:12"),
        (185, "3m05s", "3:05"),
        (3723, "1h02m", "1:02:03"),
    ],
)
def test_format_duration(seconds, words, clock):
    assert format_duration(seconds) == words
    assert format_duration(seconds, clock=True) == clock
