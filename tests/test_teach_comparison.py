"""Before and after teaching (docs/judging.md §9): both versions are judged on the same held-out
examples, which never hold a feedback text; "better"/"worse" follow the interval of the paired
change and nothing else; the CLI prints it in words or as JSON, and the report shows it."""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

from cognitivetwin_core.data.blind_answers import BlindTally
from cognitivetwin_core.playground.judges.teach_comparison import (
    BETTER,
    NO_CLEAR_CHANGE,
    NOT_RUN,
    TOO_LITTLE,
    WORSE,
    authorship_change,
    blind_change,
    perplexity_change,
)
from tests.judging_data import PERSON, maya_workspace_and_twin, messenger_chats
from tests.waits import WORK_TIMEOUT_MS

VERDICTS = (BETTER, WORSE, NO_CLEAR_CHANGE, TOO_LITTLE)


@pytest.fixture(scope="module")
def taught_maya(tmp_path_factory, tiny_model_dir):
    """Maya's workspace, a tiny twin trained on 30 of 40 chats, feedback whose edits and contexts
    are taken from two chats it did not train on, and a version taught from that feedback:
    (workspace, parent, taught, the chats the feedback came from)."""
    from cognitivetwin_core.data.feedback import EDIT, add_feedback
    from cognitivetwin_core.phase1.teach import teach_twin

    workspace, parent, _train = maya_workspace_and_twin(tmp_path_factory.mktemp("taught-maya"), tiny_model_dir)
    fed = messenger_chats(40)[36:38]  # the same chats as the workspace's; the first 30 were trained on
    for chat in fed:  # the message Tom or Ana wrote, and Maya's answer as the edit
        context, edit = chat.messages[0].content, chat.messages[1].content
        add_feedback(workspace, parent, context, "I am an AI assistant.", verdict=EDIT, edit=edit)
    taught = teach_twin(workspace, parent, device="cpu", max_steps=2, check_memory=False).adapter_dir
    yield workspace, parent, taught, fed
    workspace.close()


def test_both_versions_are_judged_on_the_same_held_out_set_without_feedback(taught_maya):
    from cognitivetwin_core.playground.held_out import HeldOut, held_out_set
    from cognitivetwin_core.playground.judges.teach_comparison import (
        FeedbackLeakError,
        check_no_feedback,
        feedback_exchange_texts,
        parent_version,
        shared_held_out,
    )

    workspace, parent, taught, fed = taught_maya
    assert parent_version(taught) == parent.resolve()
    held = shared_held_out(parent, taught, workspace=workspace)
    keys = {json.dumps(c) for c in held.conversations}
    for version in (parent, taught):
        assert keys <= {json.dumps(c) for c in held_out_set(version, workspace=workspace).conversations}
    assert len(held.conversations) >= 3 and held.replies > 0
    feedback = feedback_exchange_texts(workspace)
    assert {c.messages[0].content for c in fed} <= feedback  # the contexts count as feedback too
    assert not {m["content"] for c in held.conversations for m in c} & feedback
    assert not {c.id for c in fed} & set(held.ids)
    # Had one slipped through, no score: an error.
    leaked = HeldOut([[{"role": "user", "content": fed[0].messages[0].content}]], ["x"], [[]], "s", PERSON)
    with pytest.raises(FeedbackLeakError):
        check_no_feedback(leaked, feedback)


def _losses(per_conversation_change: list[float], tokens: int = 20) -> tuple[list, list]:
    """(before, after) summed losses per conversation: before at 3.0 nats a token, after shifted."""
    before = [(3.0 * tokens, tokens) for _ in per_conversation_change]
    after = [((3.0 + change) * tokens, tokens) for change in per_conversation_change]
    return before, after


def test_perplexity_verdict_follows_the_interval_over_conversations():
    rng = random.Random(0)
    lower = perplexity_change(*_losses([-0.3 + rng.uniform(-0.05, 0.05) for _ in range(30)]))
    assert lower["verdict"] == BETTER and lower["after"] < lower["before"]
    assert lower["loss_difference"]["high"] < 0 and lower["change"]["high"] < 0
    assert "lower" in lower["sentence"] and "better" in lower["sentence"] and "interval" in lower["sentence"]
    higher = perplexity_change(*_losses([0.3 + rng.uniform(-0.05, 0.05) for _ in range(30)]))
    assert higher["verdict"] == WORSE and higher["loss_difference"]["low"] > 0
    # A mean below zero carried by a few conversations: the interval spans 0, no claim.
    mixed = perplexity_change(*_losses([-1.0, 0.8, -0.9, 0.7, -0.6, 0.5, 0.1, -0.2]))
    assert mixed["after"] < mixed["before"]
    assert mixed["loss_difference"]["low"] < 0 < mixed["loss_difference"]["high"]
    assert mixed["verdict"] == NO_CLEAR_CHANGE and "no clear change" in mixed["sentence"]
    assert perplexity_change([(0.0, 0)], [(0.0, 0)]) is None
    few = perplexity_change(*_losses([-0.3, -0.31, -0.29, -0.3]))  # clearly lower, but 4 conversations
    assert few["verdict"] == TOO_LITTLE and "fewer than 5 held-out conversations" in few["sentence"]


def _judge(difference: dict, reliable: bool = True) -> dict:
    share = {"share": 0.5, "low": 0.4, "high": 0.6}
    return {
        "reliable": reliable,
        "verdict": "too little data to judge: only 3 of your held-out messages" if not reliable else "",
        "real": {"share": 0.9, "low": 0.8, "high": 1.0},
        "others": {"share": 0.1, "low": 0.0, "high": 0.2},
        "twin": share,
        "base": share,
        "twin_minus_base": difference,
    }


def test_authorship_verdict_follows_the_paired_interval():
    up = authorship_change(_judge({"share": 0.2, "low": 0.05, "high": 0.35}))
    assert up["verdict"] == BETTER and "+20 points" in up["sentence"] and up["sentence"].endswith("better.")
    down = authorship_change(_judge({"share": -0.2, "low": -0.35, "high": -0.05}))
    assert down["verdict"] == WORSE
    across = authorship_change(_judge({"share": 0.1, "low": -0.05, "high": 0.25}))
    assert across["verdict"] == NO_CLEAR_CHANGE
    unsure = authorship_change(_judge({"share": 0.5, "low": 0.4, "high": 0.6}, reliable=False))
    assert unsure["verdict"] == TOO_LITTLE and "only 3" in unsure["sentence"]


def test_blind_test_not_run_then_compared_with_newcombes_interval():
    assert blind_change({"mine": BlindTally(0, 0, 0)}, {"mine": BlindTally(5, 10, 0)})["verdict"] == NOT_RUN
    # Told apart 38 of 40 before, 12 of 40 after: the twin passes for the person far more often.
    fooled_more = blind_change({"mine": BlindTally(38, 40, 0)}, {"mine": BlindTally(12, 40, 1)})
    assert fooled_more["verdict"] == BETTER and fooled_more["modes"]["mine"]["difference"]["high"] < 0
    assert "picking your own reply" in fooled_more["sentence"]
    assert blind_change({"twin": BlindTally(12, 40, 0)}, {"twin": BlindTally(38, 40, 0)})["verdict"] == WORSE
    assert blind_change({"mine": BlindTally(6, 10, 0)}, {"mine": BlindTally(5, 10, 0)})["verdict"] == NO_CLEAR_CHANGE


def _run(argv: list[str]) -> tuple[int, str, str]:
    from cognitivetwin_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def compared_json(taught_maya, tiny_model_dir):
    workspace, _parent, taught, _fed = taught_maya
    code, out, err = _run(
        ["judge", "compare", "--after", str(taught), "--workspace", str(workspace.path), "--max-examples", "6"]
        + ["--device", "cpu", "--json"]
    )
    assert code == 0, err
    return json.loads(out), err


def test_judge_compare_json_and_words(taught_maya, compared_json):
    from cognitivetwin_core.playground.judges.teach_comparison import COMPARISON_FILE, comparison_lines, shared_held_out

    workspace, parent, taught, _fed = taught_maya
    report, err = compared_json
    assert report["before"] == str(parent.resolve()) and report["after"] == str(taught)
    assert "Held out for both versions" in err
    held = shared_held_out(parent, taught, workspace=workspace)
    assert report["held_out"]["conversations"] == len(held.conversations)
    assert report["held_out"]["feedback_texts_kept_out"] == 5  # two contexts, two edits, one reply
    assert {row["conversation"] for row in report["examples"]} <= set(held.ids) and len(report["examples"]) == 6
    perplexity = report["perplexity"]
    assert perplexity["before"] > 1 and perplexity["after"] > 1
    assert perplexity["verdict"] == _expected(
        perplexity["loss_difference"], lower_is_better=True, conversations=perplexity["conversations"]
    )
    assert report["authorship"]["verdict"] in VERDICTS and report["blind"]["verdict"] == NOT_RUN
    assert json.loads((taught / COMPARISON_FILE).read_text()) == report
    text = "\n".join(comparison_lines(report))
    assert perplexity["sentence"] in text and "Blind test: not run yet" in text and "Perplexity:" in text


def _expected(interval: dict, *, lower_is_better: bool, conversations: int = 5) -> str:
    if conversations < 5:
        return TOO_LITTLE
    if interval["low"] <= 0 <= interval["high"]:
        return NO_CLEAR_CHANGE
    return BETTER if (interval["high"] < 0) == lower_is_better else WORSE


@pytest.mark.slow
def test_judge_compare_prints_words_and_refuses_an_untaught_version(taught_maya, tiny_model_dir):
    workspace, parent, taught, _fed = taught_maya
    code, out, _err = _run(
        ["judge", "compare", "--before", str(parent), "--after", str(taught), "--workspace", str(workspace.path)]
        + ["--max-examples", "2", "--device", "cpu"]
    )
    assert code == 0
    assert "Both judged on the same held-out data" in out and "Held-out perplexity:" in out
    assert "Judged to be yours:" in out and "Blind test: not run yet" in out
    code, _out, err = _run(["judge", "compare", "--after", str(parent), "--workspace", str(workspace.path)])
    assert code != 0 and "names no parent_adapter" in err


@pytest.mark.slow
def test_the_report_of_a_taught_version_has_the_before_and_after(taught_maya, compared_json, tmp_path):
    from cognitivetwin_core.playground.evaluation import evaluate_adapter
    from cognitivetwin_core.playground.judges.report import write_report

    workspace, _parent, taught, _fed = taught_maya
    report, _err = compared_json
    evaluate_adapter(taught, workspace=workspace, samples=2, max_new_tokens=4, device="cpu")
    page = write_report([taught], tmp_path / "report.html", workspace=workspace).read_text(encoding="utf-8")
    assert "Before and after teaching" in page
    assert f"{report['perplexity']['before']:.2f} before" in page and "Blind test: not run yet" in page


@pytest.mark.slow
def test_the_teach_page_shows_before_and_after_in_words(qtbot, taught_maya, compared_json, test_output_dir):
    from PySide6.QtCore import Qt

    from app.tabs.playground_teach_compare import TeachComparePanel

    workspace, parent, taught, _fed = taught_maya
    panel = TeachComparePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_target(workspace, str(parent))  # not taught from anything: nothing to compare
    assert not panel.compare_button.isVisible() and not panel.details.isVisible()
    panel.set_target(workspace, str(taught))  # the comparison saved beside it, shown at once
    assert panel.compare_button.isEnabled() and panel.details.isVisible()
    assert compared_json[0]["perplexity"]["sentence"] in panel.details.text()

    panel.max_examples = 2
    with qtbot.waitSignal(panel.compared, timeout=WORK_TIMEOUT_MS) as done:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    report = done.args[0]
    verdict = report["perplexity"]["verdict"]
    assert panel.message.text().startswith(f"Before and after teaching: perplexity: {verdict} · judged yours: ")
    assert "blind test: not run yet" in panel.message.text()
    assert (
        report["perplexity"]["sentence"] in panel.details.text() and "Blind test: not run yet" in panel.details.text()
    )
    assert panel.compare_button.isEnabled() and not panel.stop_button.isVisible()
    panel.grab().save(str(test_output_dir / "teach-before-and-after.png"))


@pytest.mark.slow
def test_teach_on_the_built_in_base_prefers_the_edits_and_compares_before_and_after(embedded_model_dir, tmp_path):
    """A short Teach on the built-in base: the new version prefers the person's edits more than
    its parent did (as on the tiny base in tests/test_teach.py), and the before/after on Maya's
    chats is printed and saved; the last line stays the new version's folder. One Teach for
    both checks: each run on this base costs about 20 s."""
    from cognitivetwin_core.data.feedback import EDIT, add_feedback
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.playground.judges.teach_comparison import COMPARISON_FILE, feedback_exchange_texts
    from tests.test_teach import EDITS, _check_taught, _parent_adapter

    parent = _parent_adapter("smollm2-135m", tmp_path / "parent")
    with Workspace.open(tmp_path / "ws") as workspace:
        workspace.add_conversations(messenger_chats(40))
        workspace.set_twin_speaker(PERSON)
        for context, reply, edit in EDITS:
            add_feedback(workspace, parent, context, reply, verdict=EDIT, edit=edit)
    argv = ["teach", "--adapter", str(parent), "--workspace", str(tmp_path / "ws"), "--device", "cpu"]
    code, out, err = _run([*argv, "--max-steps", "4", "--compare", "2"])
    assert code == 0, err
    _check_taught("smollm2-135m", parent, tmp_path / "ws", out)
    lines = out.strip().splitlines()
    taught = lines[-1]
    report = json.loads((tmp_path / "ws" / "adapters" / taught.rsplit("/", 1)[-1] / COMPARISON_FILE).read_text())
    assert report["after"] == taught and report["before"] == str(parent.resolve())
    assert "Held-out perplexity:" in out and "Judged to be yours:" in out and "Blind test: not run yet" in out
    assert "may overlap" in out  # the fresh parent has no training file: said, not hidden
    with Workspace.open(tmp_path / "ws", read_only=True) as workspace:
        feedback = feedback_exchange_texts(workspace)
    assert not {row["real"] for row in report["examples"]} & feedback
    perplexity = report["perplexity"]
    assert perplexity["verdict"] == _expected(
        perplexity["loss_difference"], lower_is_better=True, conversations=perplexity["conversations"]
    )
