"""`Cancellation`: the one stop request of the core and the app's background jobs."""

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
