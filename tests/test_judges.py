"""The judges of a twin (docs/judging.md): held-out data follows the person and never overlaps
what the adapter trained on; the authorship judge tells the person from the others and says
"too little data" when it cannot; a classifier's ROC-AUC says whether replies can be told
apart; every verdict of "closer" needs an interval that excludes no difference."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re

import pytest

from cognitivetwin_core.playground.judges.authorship import JudgedConversation, closer_verdict, judge_authorship
from cognitivetwin_core.playground.judges.separability import stylometric_matrix, told_apart
from tests.judging_data import OTHERS, PERSON, maya_says, maya_workspace_and_twin, messenger_chats, others_say


@pytest.fixture(scope="module")
def maya_twin(tmp_path_factory, tiny_model_dir):
    """A messenger workspace where Maya is the person, and a tiny adapter trained on 30 of its
    40 chats (no validation file): (workspace, adapter folder, the trained examples' file)."""
    workspace, adapter, train = maya_workspace_and_twin(tmp_path_factory.mktemp("maya"), tiny_model_dir)
    yield workspace, adapter, train
    workspace.close()


def test_held_out_follows_the_person_and_skips_what_was_trained(maya_twin):
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl
    from cognitivetwin_core.playground.held_out import held_out_set, turn_hashes

    workspace, adapter, train = maya_twin
    held = held_out_set(adapter, workspace=workspace)
    assert held.speaker == PERSON and held.checked_by_content
    # The 30 trained chats are left out, and so is any other that repeats a trained exchange word for word.
    assert len(held.conversations) + held.excluded == 40 and held.excluded >= 30 and len(held.conversations) >= 5
    trained = set().union(*(turn_hashes(c) for c in read_chat_jsonl(train)))
    maya_texts = {m.content for c in workspace.iter_conversations() for m in c.messages if m.speaker == PERSON}
    for conversation, others in zip(held.conversations, held.others):
        assert not turn_hashes(conversation) & trained
        replies = [m["content"] for m in conversation if m["role"] == "assistant"]
        assert replies and all(set(r.split("\n")) <= maya_texts for r in replies)
        assert others and not set(others) & maya_texts


@pytest.fixture(scope="module")
def maya_evaluated(maya_twin, tiny_model_dir):
    """`phase1 --evaluate` on Maya's twin, run once: (exit code, standard output, standard error)."""
    from cognitivetwin_core.cli import main

    workspace, adapter, _train = maya_twin
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["phase1", "--evaluate", str(adapter), "--workspace", str(workspace.path)]
            + ["--base-model", str(tiny_model_dir), "--samples", "6", "--max-new-tokens", "6"]
        )
    return code, out.getvalue(), err.getvalue()


def test_evaluation_names_the_persons_replies_and_judges_them(maya_twin, maya_evaluated):
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl
    from cognitivetwin_core.playground.held_out import turn_hashes

    workspace, adapter, train = maya_twin
    code, out, err = maya_evaluated
    assert code == 0, err
    assert "replies of Maya" in out and "Answering held-out message 6 of 6, about" in err
    report = json.loads((adapter / "evaluation.json").read_text(encoding="utf-8"))
    trained = set().union(*(turn_hashes(c) for c in read_chat_jsonl(train)))
    maya_texts = {m.content for c in workspace.iter_conversations() for m in c.messages if m.speaker == PERSON}
    assert len(report["examples"]) == 6
    for example in report["examples"]:
        assert {"context", "real", "twin", "base"} <= set(example)
        assert set(example["real"].split("\n")) <= maya_texts
        pair = [{"role": "user", "content": example["context"]}, {"role": "assistant", "content": example["real"]}]
        assert not turn_hashes(pair) & trained
        assert 0 <= example["twin_judged_yours"] <= 1
    judge = report["judge"]
    for who in ("real", "others", "twin", "base"):
        assert 0 <= judge[who]["low"] <= judge[who]["share"] <= judge[who]["high"] <= 1
    # Maya writes unlike Tom and Ana: her held-out replies are hers far more often than theirs.
    assert judge["real"]["share"] >= 0.8 and judge["others"]["share"] <= 0.2 and judge["reliable"]
    assert report["told_apart"]["stylometric"]["twin"]["auc"] >= 0.0
    assert "Who wrote it?" in out


def _conversations(person_twin: bool, count: int = 12, seed: int = 1) -> list[JudgedConversation]:
    rng = random.Random(seed)
    chats = messenger_chats(count, seed=seed)
    return [
        JudgedConversation(
            [m.content for m in c.messages if m.speaker == PERSON],
            [m.content for m in c.messages if m.speaker in OTHERS],
            [maya_says(rng) if person_twin else others_say(rng) for _ in range(2)],
            [others_say(rng) for _ in range(2)],
        )
        for c in chats
    ]


def test_the_judge_tells_the_person_from_the_others_and_the_twin_from_the_base():
    result = judge_authorship(_conversations(person_twin=True))
    assert result["reliable"]
    assert result["real"]["share"] >= 0.8 and result["others"]["share"] <= 0.2
    assert result["twin"]["share"] > result["base"]["share"]
    assert result["verdict"] == "closer to you than the base: yes"
    assert "judged to be you: your real replies" in result["headline"]
    # The same judge on a twin that writes like the others: no claim of "closer".
    unlike = judge_authorship(_conversations(person_twin=False))
    assert unlike["verdict"] != "closer to you than the base: yes"


def test_too_little_data_says_so_instead_of_a_verdict():
    few = _conversations(person_twin=True, count=2)
    for conversation in few:
        conversation.person = conversation.person[:2]
    result = judge_authorship(few)
    assert not result["reliable"] and result["verdict"].startswith("too little data")


def test_closer_needs_an_interval_that_excludes_no_difference():
    assert closer_verdict({"share": 0.3, "low": 0.05, "high": 0.5}).endswith("yes")
    assert closer_verdict({"share": 0.3, "low": -0.05, "high": 0.5}).endswith("no clear difference")
    assert closer_verdict(None).endswith("no clear difference")


def test_told_apart_is_near_chance_for_alike_replies_and_high_for_unlike_ones():
    rng = random.Random(3)
    real = [maya_says(rng) for _ in range(30)]
    alike = [maya_says(rng) for _ in range(30)]
    unlike = [others_say(rng) for _ in range(30)]
    groups = [f"c{i // 2}" for i in range(30)]
    same = told_apart(stylometric_matrix(real), stylometric_matrix(alike), groups)
    apart = told_apart(stylometric_matrix(real), stylometric_matrix(unlike), groups)
    assert same["low"] <= 0.5 + 0.2 and apart["auc"] >= 0.9 and apart["low"] > 0.5
    assert told_apart(stylometric_matrix(real[:2]), stylometric_matrix(unlike[:2]), groups[:2]) is None


def test_the_blind_test_reads_a_pipe_and_saves_its_score(maya_twin, maya_evaluated, monkeypatch, capsys, tmp_path):
    from cognitivetwin_core.cli import main
    from cognitivetwin_core.data.blind_answers import blind_tally

    workspace, adapter, _train = maya_twin
    assert maya_evaluated[0] == 0
    # Six pairs: pick 1, 2, skip, nonsense then 1, 2, 1.
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n2\ns\nmaybe\n1\n2\n1\n"))
    code = main(["judge", "blind", "--adapter", str(adapter), "--workspace", str(workspace.path), "--seed", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Pair 6 of 6" in out and "Answer 1 or 2 to choose" in out
    tally = blind_tally(workspace, adapter, "mine")
    assert tally.answered == 5 and tally.skipped == 1
    assert f"{tally.correct} of 5 (95% interval" in out and f"the twin fooled you {5 - tally.correct}" in out
    # The twin mode counts apart, and end of input stops early with what was answered saved.
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n"))
    assert (
        main(["judge", "blind", "--adapter", str(adapter), "--workspace", str(workspace.path), "--mode", "twin"]) == 0
    )
    assert blind_tally(workspace, adapter, "twin").answered == 1
    assert blind_tally(workspace, adapter, "mine").answered == 5
    # The report shows the saved score beside the judges of the real evaluation.
    out = tmp_path / "report.html"
    assert (
        main(["judge", "report", "--adapter", str(adapter), "--workspace", str(workspace.path), "--out", str(out)]) == 0
    )
    page = out.read_text(encoding="utf-8")
    assert f"You picked your own reply {tally.correct} of 5" in page and "judged to be you" in page.lower()


@pytest.mark.slow
def test_chat_says_how_much_a_reply_sounds_like_you_with_a_verdict(maya_twin, tiny_model_dir, capsys):
    from cognitivetwin_core.cli import main
    from cognitivetwin_core.playground.judges.sounds_like_you import PersonJudge, turn_verdict

    workspace, adapter, _train = maya_twin
    judge = PersonJudge.for_adapter(adapter, workspace)
    assert judge.reliable and "recognises your own held-out replies" in judge.note
    assert judge.yours("lol ok see u at the bus 😂") > 0.5 > judge.yours("Certainly. I will bring the tickets.")
    assert turn_verdict(0.8, 0.2).endswith("yes") and turn_verdict(0.6, 0.55).endswith("no clear difference")
    code = main(
        ["chat", "--adapter", str(adapter), "--base-model", str(tiny_model_dir), "--workspace", str(workspace.path)]
        + ["--prompt", "Are you coming to dinner?", "--compare-base", "--max-new-tokens", "4", "--seed", "0"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "0% = surely someone else, 100% = surely you" in captured.err
    assert re.search(r"\[twin\] sounds like you: \d+%", captured.out)
    assert "closer to you than the base: " in captured.out
