"""The guided path's state read from a workspace, the glossary's lookups, and the Phase 1
launch check (Qt-free core)."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core import glossary
from cognitivetwin_core.playground.journey import DONE, LATER, NEXT, RUNNING, read_journey


@pytest.fixture()
def workspace(tmp_path):
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


def test_the_journey_follows_the_workspace(workspace):
    from cognitivetwin_core.data.importers import import_into

    journey = read_journey(workspace)
    assert [s.key for s in journey.steps] == ["data", "phase1", "phase2", "playground"]
    assert [s.state for s in journey.steps] == [NEXT, LATER, LATER, LATER]
    assert journey.current.key == "data" and journey.headline.startswith("Step 1 of 4")
    assert read_journey(None).current.key == "data"

    import_into(workspace, "demo")
    journey = read_journey(workspace)
    # The demo's owner is its user side, so "Which of these is you?" is answered: the step is done.
    assert workspace.twin_speaker() == "user"
    assert journey.step("data").state == DONE
    assert journey.current.key == "phase1" and journey.step("phase1").tab == "Phase 1"
    assert journey.step("phase2").state == LATER

    workspace.upsert_phase1_job("local-a", {"backend": "local", "status": "running"})
    assert read_journey(workspace).step("phase1").state == RUNNING
    workspace.upsert_phase1_job("local-a", {"status": "completed", "adapter_path": "/x"})
    journey = read_journey(workspace)
    assert journey.step("phase1").state == DONE and journey.current.key == "phase2"
    assert "this computer" in journey.step("phase1").status

    run_dir = workspace.runs_dir / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": "run-1", "outcome": "completed", "started_at": "2026-01-01T00:00:00"})
    )
    journey = read_journey(workspace)
    assert journey.step("phase2").state == DONE
    assert "without your voice from step 2" in journey.step("phase2").status  # the run named no adapter
    assert journey.current.key == "playground" and journey.step("playground").state == NEXT


def test_glossary_finds_terms_by_whole_words_longest_first():
    names = [t.name for t in glossary.terms_in("Pattern macro F1 (baseline) · LoRA rank · ✓ rules · Epochs")]
    assert names == ["patterns", "macro F1", "baseline", "LoRA rank", "✓ rules", "epoch"]
    assert glossary.terms_in("deepest") == [] and glossary.terms_in("") == []
    assert glossary.meaning("lora RANK").startswith("How much the model may change")
    with pytest.raises(KeyError):
        glossary.meaning("flux capacitor")
    # One plain sentence each, and no term defined in terms of itself only.
    for term in glossary.TERMS:
        assert term.meaning.endswith(".") and len(term.meaning) < 220, term.name
    spellings = [s.casefold() for t in glossary.TERMS for s in (t.name, *t.aliases)]
    assert len(spellings) == len(set(spellings)), "each spelling names one term"


def test_the_plain_names_on_screen_keep_the_exact_term_in_their_tooltips(qapp):
    from PySide6.QtWidgets import QLabel

    from app.widgets.glossary_tips import apply_glossary
    from app.widgets.run_summary_card import HEAD_METRICS
    from app.widgets.trajectory_sliders import TrajectorySliders
    from app.widgets.trajectory_style import COORDINATE_LABELS, COORDINATE_TERMS

    # The summary card's measures read in plain words; their tooltips name the exact term.
    shown = " ".join(label for _, _, label, _, _ in HEAD_METRICS)
    for jargon in ("macro", "F1", "cosine", "retrieval"):
        assert jargon not in shown
    assert {"macro F1", "cosine"} <= {t.name for t in glossary.terms_in(shown)}
    # The trajectory sliders show plain names, each label's tooltip its exact term and meaning.
    sliders = TrajectorySliders()
    apply_glossary(sliders)
    labels = {label.text(): label for label in sliders.findChildren(QLabel)}
    for plain, term in zip(COORDINATE_LABELS, COORDINATE_TERMS):
        assert term not in plain or plain == term == "complexity"
        assert f"{term}: {glossary.meaning(term)}" in labels[plain].toolTip()


def test_the_launch_check_names_one_reason_and_one_fix(tmp_path, monkeypatch):
    from cognitivetwin_core.phase1.readiness import (
        FIX_ADD_KEY,
        FIX_IMPORT_DATA,
        FIX_USE_BUILTIN,
        base_on_disk,
        launch_check,
    )

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert base_on_disk("smollm2-135m") and not base_on_disk("llama-3.2-1b")
    snapshot = tmp_path / "hub" / "models--meta-llama--Llama-3.2-1B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert not base_on_disk("llama-3.2-1b"), "no weights yet"
    (snapshot / "model.safetensors").write_bytes(b"x")
    assert base_on_disk("llama-3.2-1b")

    assert launch_check("local", "smollm2-135m", has_key=None, conversations=0).fix == FIX_IMPORT_DATA
    assert launch_check("local", "smollm2-135m", has_key=None, conversations=3).ok
    assert launch_check("local", "llama-3.2-3b", has_key=True, conversations=3).fix == FIX_USE_BUILTIN
    assert launch_check("together", "llama-3.2-3b", has_key=False, conversations=3).fix == FIX_ADD_KEY
    assert launch_check("together", "llama-3.2-3b", has_key=None, conversations=3).ok
    assert not launch_check("together", "smollm2-135m", has_key=True, conversations=3).ok
    missing = launch_check("local", "smollm2-135m", has_key=None, conversations=3, data_path=tmp_path / "no.jsonl")
    assert not missing.ok and "does not exist" in missing.reason
