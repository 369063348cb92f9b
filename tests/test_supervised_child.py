"""A serving child (supervised_child.serve / SupervisedChild.ask): one process answers
requests in turn, a request that raises leaves it serving, Stop ends the request being
handled (not the child), and a killed child fails the request being asked with a sentence."""

from __future__ import annotations

import os
import signal

import pytest

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.supervised_child import ChildCrashedError, RequestDone, SupervisedChild, serve


def _handle(channel, body, cancellation):
    if body == "refuse":
        raise CognitiveTwinError("That request cannot be answered; ask another.")
    if body == "wait":  # until stopped, saying it has begun
        channel.send("waiting")
        cancellation.wait()
        return "stopped"
    for piece in body.split():
        channel.send(piece)
    return os.getpid()


def _echo(channel):
    serve(channel, lambda body, cancellation: _handle(channel, body, cancellation))


@pytest.fixture
def child():
    child = SupervisedChild(_echo, name="echo", what="The echo process", long_lived=True)
    yield child
    child.close(grace_s=10)


def test_one_child_answers_requests_in_turn_and_lives_on_after_an_error(child):
    first = list(child.ask("a b c"))
    assert first[:3] == ["a", "b", "c"] and isinstance(first[3], RequestDone)
    pid = first[3].result
    assert pid != os.getpid() and pid == child.pid
    with pytest.raises(CognitiveTwinError, match="cannot be answered"):
        list(child.ask("refuse"))
    assert list(child.ask("d"))[-1].result == pid  # the same child: nothing was loaded twice


def test_stop_ends_the_request_not_the_child(child):
    answers = []
    for message in child.ask("wait"):
        answers.append(message)
        if message == "waiting":
            child.request_stop(save=False)
    assert answers[-1] == RequestDone(1, "stopped")
    assert list(child.ask("e"))[0] == "e"


def test_a_killed_child_fails_the_request_with_a_sentence(child):
    with pytest.raises(ChildCrashedError) as raised:
        for message in child.ask("wait", crash_then="; ask again to start another"):
            if message == "waiting":
                os.kill(child.pid, signal.SIGKILL)
    assert str(raised.value).startswith(
        "The echo process was ended by signal SIGKILL before it finished (out of memory, or killed); "
        "ask again to start another."
    )
