"""`Cancellation`: the one stop request of the core, and its wrap of a caller's own check."""

from __future__ import annotations

import threading

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError


def test_cancel_is_seen_by_every_check_and_wakes_a_wait():
    cancellation = Cancellation()
    assert not cancellation.cancelled and not cancellation.wait(0)
    cancellation.raise_if_cancelled("not yet")
    threading.Thread(target=cancellation.cancel).start()
    assert cancellation.wait(30)
    assert cancellation.cancelled
    with pytest.raises(CancelledError, match="stopped here"):
        cancellation.raise_if_cancelled("stopped here")


def test_a_callers_check_cancels_too_and_stays_cancelled():
    asked = []
    cancellation = Cancellation(also_when=lambda: bool(asked))
    assert not cancellation.cancelled and not cancellation.wait(0.05)
    asked.append(True)
    assert cancellation.cancelled and cancellation.wait(30)
    asked.clear()  # a check that changes its mind does not undo the request
    assert cancellation.cancelled


def test_a_wait_wakes_when_the_callers_check_turns_true():
    flag = threading.Event()
    cancellation = Cancellation(also_when=flag.is_set)
    threading.Timer(0.05, flag.set).start()
    assert cancellation.wait(30)
