"""The learning-rate schedule and resume fingerprint shared by both trainers."""

from __future__ import annotations

import pytest

from cognitivetwin_core.models.training import fingerprint_changes, lr_factor, resume_mismatch_error, warmup_steps


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_warm_up_then_decay_to_the_floor(decay):
    total = 100
    warmup = warmup_steps(total, 0.05)
    assert warmup == 5
    factors = [lr_factor(s, total, warmup, decay=decay) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == pytest.approx(1.0)
    assert factors[5] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[5:], factors[6:]))  # never rises after the warm-up
    assert lr_factor(500, total, warmup, decay=decay) == pytest.approx(0.1)  # past the end: the floor


def test_linear_and_cosine_differ_in_the_middle():
    assert lr_factor(52, 100, 5, decay="linear") == pytest.approx(0.55, abs=0.01)
    assert lr_factor(52, 100, 5, decay="cosine") == pytest.approx(0.55, abs=0.01)  # both halfway
    assert lr_factor(20, 100, 5, decay="cosine") > lr_factor(20, 100, 5, decay="linear")
    with pytest.raises(ValueError):
        lr_factor(50, 100, 5, decay="step")


def test_fingerprint_changes_name_what_differs():
    saved = {"data": "a", "lr": 1e-3, "epochs": 3, "old_only": 1}
    wanted = {"data": "a", "lr": 2e-3, "epochs": 5}
    assert fingerprint_changes(saved, wanted) == ["epochs", "lr", "old_only"]
    assert fingerprint_changes(saved, wanted, ignore=("epochs",)) == ["lr", "old_only"]
    assert fingerprint_changes(saved, wanted, keys=wanted, ignore=("epochs",)) == ["lr"]
    assert fingerprint_changes(wanted, dict(wanted)) == []
    message = str(resume_mismatch_error("/runs/x/checkpoint", ["lr"]))
    assert "(lr)" in message and "/runs/x/checkpoint" in message
