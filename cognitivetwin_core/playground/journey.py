"""The guided path from a person's conversations to their twin, and where a workspace stands
on it: bring your conversations (and say which speaker is you) → teach the base your voice
(Phase 1) → learn your style (Phase 2) → meet your twin (Playground).

    journey = read_journey(workspace)
    journey.current          # the first step not done: what to do next
    for step in journey.steps: step.title, step.state, step.status, step.action, step.tab

It lives in playground/ because it reads both phases' records (only this layer may); it
reads, never writes, and needs neither torch nor Qt: the app's Start page draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.phase1.jobs import read_jobs
from cognitivetwin_core.phase2.runs import list_runs

# The tab each step's button opens (the app's tab titles without their "&").
DATA_TAB, PHASE1_TAB, PHASE2_TAB, PLAYGROUND_TAB = "Data", "Phase 1", "Phase 2", "Playground"

# The roles a chat export uses; a workspace setting names the person (docs/twin-speaker.md).
_TWIN_SPEAKER_SETTING = "twin_speaker"
_USABLE_PHASE2_OUTCOMES = ("completed", "stopped")

DONE, NEXT, LATER, RUNNING = "done", "next", "later", "running"


@dataclass(frozen=True)
class JourneyStep:
    key: str  # "data" | "phase1" | "phase2" | "playground"
    title: str  # what the step is, in the person's words
    what: str  # one or two sentences: what happens in this step and why
    state: str  # DONE | NEXT | RUNNING | LATER
    status: str  # where the workspace stands on it, in words
    action: str  # the button's text
    tab: str  # the tab the button opens

    @property
    def done(self) -> bool:
        return self.state == DONE


@dataclass(frozen=True)
class Journey:
    steps: tuple[JourneyStep, ...]

    @property
    def current(self) -> JourneyStep | None:
        """The step to do next (NEXT or RUNNING); None when every step is done."""
        return next((step for step in self.steps if step.state in (NEXT, RUNNING)), None)

    def step(self, key: str) -> JourneyStep:
        return next(step for step in self.steps if step.key == key)

    @property
    def headline(self) -> str:
        current = self.current
        if current is None:
            return "Your twin is ready: meet it in the Playground, or train again with more data."
        number = self.steps.index(current) + 1
        return f"Step {number} of {len(self.steps)}: {current.title.lower()}."


def _twin_speaker(workspace) -> tuple[str | None, bool]:
    """(the person, chosen by the user?) as far as this workspace records it."""
    chosen = None
    getter = getattr(workspace, "get_setting", None)
    if callable(getter):
        try:
            chosen = getter(_TWIN_SPEAKER_SETTING)
        except Exception:  # an older workspace without a settings table: nothing chosen
            chosen = None
    if chosen:
        return str(chosen), True
    speaker = getattr(workspace, "twin_speaker", None)
    return (speaker() if callable(speaker) else None), False


def _phase1_state(workspace) -> tuple[str, str]:
    jobs = read_jobs(workspace) if workspace is not None else []
    finished = [job for job in jobs if job.status == "completed" and job.adapter_path]
    if finished:
        latest = finished[-1]
        where = "on this computer" if latest.backend == "local" else "on Together AI"
        return DONE, f"Done: {len(finished)} trained voice(s); the latest ({latest.job_id}) was trained {where}."
    running = [job for job in jobs if not job.terminal]
    if running:
        return RUNNING, f"Training now ({running[-1].job_id}): watch it in the Phase 1 tab."
    if jobs:
        last = jobs[-1]
        return NEXT, f"The last try ({last.job_id}) ended “{last.status}”: start another one."
    return NEXT, "Not started yet."


def _phase2_state(workspace) -> tuple[str, str, int]:
    runs = list_runs(workspace) if workspace is not None else []
    usable = [run for run in runs if run.outcome in _USABLE_PHASE2_OUTCOMES and run.exists]
    if usable:
        latest = usable[0]
        name = latest.fields.get("name") or latest.run_id
        text = f"Done: {len(usable)} finished run(s); the latest is “{name}”."
        if not (latest.fields.get("adapter") or latest.parameters.get("adapter_dir")):
            text += " It learned on the plain base model, without your voice from step 2 (no Phase 1 adapter)."
        return DONE, text, len(usable)
    if any(run.outcome == "running" for run in runs):
        return RUNNING, "Learning now: watch it in the Phase 2 tab.", 0
    if runs:
        return NEXT, f"{len(runs)} run(s) did not finish: start another one.", 0
    return NEXT, "Not started yet.", 0


def read_journey(workspace) -> Journey:
    """Where `workspace` (a cognitivetwin_core.data.workspace.Workspace, or None) stands."""
    conversations = workspace.count_conversations() if workspace is not None else 0
    speaker, chosen = _twin_speaker(workspace) if workspace is not None else (None, False)
    if conversations == 0:
        data_state, data_status = NEXT, "No conversations yet: import yours, or load the demo to try the app."
    elif not chosen and hasattr(workspace, "speakers"):
        data_state = NEXT
        data_status = (
            f"{conversations} conversation(s) imported. Now say which side of the chats is you "
            "(“Which of these is you?” in the Data tab), so the twin learns your messages."
        )
    else:
        from cognitivetwin_core.data.twin_speaker import SIDE_NAMES

        who = f"; the twin learns your messages ({SIDE_NAMES.get(speaker, speaker)})" if speaker else ""
        data_state, data_status = DONE, f"Done: {conversations} conversation(s){who}."
    has_data = conversations > 0

    p1_state, p1_status = _phase1_state(workspace) if has_data else (LATER, "Needs your conversations first.")
    p2_state, p2_status, usable_runs = (
        _phase2_state(workspace) if has_data else (LATER, "Needs your conversations first.", 0)
    )
    # Phase 2 can learn from the plain base model, so it does not wait for Phase 1 to finish;
    # it is only "next" once Phase 1 is done or running.
    if p2_state == NEXT and p1_state == NEXT:
        p2_state = LATER
        p2_status = "After Phase 1 (it can also learn from the plain base model)."
    playground_state = NEXT if usable_runs else LATER
    playground_status = (
        "Ready: open a message and see what your twin makes of it."
        if usable_runs
        else "Opens once Phase 2 has finished a run."
    )
    if usable_runs and p1_state != DONE:
        playground_status += " (Your voice from Phase 1 is not trained yet: the twin uses the plain base model.)"

    steps = (
        JourneyStep(
            "data",
            "Bring your conversations",
            "Import your chats (ChatGPT, WhatsApp, Telegram, files) and say which speaker is you: "
            "the twin learns from your side of them.",
            data_state,
            data_status,
            "Open Data",
            DATA_TAB,
        ),
        JourneyStep(
            "phase1",
            "Teach the base your voice",
            "Phase 1 trains a small add-on so the base model writes like you. "
            "This computer: free and private, slower (minutes with the built-in small model). "
            "Together AI: paid cloud (a few dollars per run, needs a key), fast, bigger models.",
            p1_state,
            p1_status,
            "Open Phase 1",
            PHASE1_TAB,
        ),
        JourneyStep(
            "phase2",
            "Learn your style",
            "Phase 2 learns your habits of thought (your patterns and where a conversation "
            "is heading) on this computer; a few minutes with the built-in model.",
            p2_state,
            p2_status,
            "Open Phase 2",
            PHASE2_TAB,
        ),
        JourneyStep(
            "playground",
            "Meet your twin",
            "Pick any message and see which patterns your twin recognises, its style and what "
            "it expects to come next; move the sliders to see it change.",
            playground_state,
            playground_status,
            "Open Playground",
            PLAYGROUND_TAB,
        ),
    )
    return Journey(steps)
