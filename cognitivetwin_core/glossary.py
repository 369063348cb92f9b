"""Plain meanings of the technical words the app and the CLI show, for someone who has never
trained a model. One sentence each; the app puts them in tooltips (and beside some controls),
the CLI in its --help, the offline guide in its glossary.

    meaning("LoRA rank")            -> "How much the model may change: ..."
    terms_in("LoRA rank 16, alpha") -> [Term("LoRA rank", ...), Term("alpha", ...)]
    explain("Pattern macro F1")     -> "Macro F1: ..." (every term found, one per line)

Matching is by whole words, case-insensitive, longest term first ("LoRA rank" before
"LoRA"), each term at most once. No Qt, no torch: a basics module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Term:
    name: str  # as shown in the guide's glossary
    meaning: str  # one sentence, plain words
    aliases: tuple[str, ...] = ()  # other spellings the screens use (matched as whole words)


TERMS: tuple[Term, ...] = (
    # --- the path ---------------------------------------------------------------------------
    Term(
        "Phase 1",
        "The first training step: the base model reads your conversations and learns to write "
        "the way you do (your words, your tone).",
    ),
    Term(
        "Phase 2",
        "The second training step: a small extra model learns your habits of thought (which "
        "patterns you use and where a conversation is heading) from the Phase 1 model's view "
        "of your messages.",
    ),
    Term(
        "twin speaker",
        "The person the twin learns to be: in a chat with several people, the one whose messages are yours.",
        ("which of these is you",),
    ),
    Term(
        "base model",
        "The ready-made language model the twin starts from; training adds your voice on top of it.",
        ("base",),
    ),
    Term(
        "hidden size",
        "How many numbers the model uses inside to represent each word; bigger models use more.",
        ("hidden",),
    ),
    Term(
        "context",
        "How much text (in tokens) the model can read at once; longer conversations are cut.",
        ("context length",),
    ),
    Term(
        "layers",
        "The model's stacked processing stages; more layers make a bigger, slower model.",
    ),
    Term(
        "adapter",
        "The small file of changes that training adds to the base model; base plus adapter is your twin's voice.",
    ),
    Term(
        "Together AI",
        "A paid cloud service that trains models on its fast computers; you need a key from "
        "together.ai and each job costs a few dollars.",
        ("Together",),
    ),
    Term(
        "this computer",
        "Training runs here, free and private, but slower; it needs the base model's files on this computer.",
        ("local",),
    ),
    Term(
        "dry run",
        "A check that costs nothing: it reads your data, counts it and says how long or how much "
        "training would take, without starting anything.",
    ),
    Term(
        "workspace",
        "The folder where the app keeps your conversations, training runs and results.",
    ),
    # --- training settings -------------------------------------------------------------------
    Term(
        "LoRA",
        "A way to train only a small add-on to the model instead of all of it: fast, cheap and "
        "the base model stays untouched.",
    ),
    Term(
        "LoRA rank",
        "How much the model may change: higher learns more detail and needs more memory and time; 8 to 32 is usual.",
        ("rank",),
    ),
    Term(
        "alpha",
        "How strongly the learned changes count against the base model; the app sets it to twice the rank.",
        ("LoRA alpha",),
    ),
    Term(
        "suffix",
        "A short name of your choice (letters, digits, dashes) added to the trained model's name so you can find it.",
    ),
    Term(
        "epoch",
        "One full pass over all your conversations; more epochs learn more but may start memorising.",
        ("epochs",),
    ),
    Term(
        "learning rate",
        "How big each learning step is: too high and training goes wild, too low and it learns "
        "nothing; leave it empty for the tried default.",
    ),
    Term(
        "training steps",
        "One training step is one small update of the model from a handful of examples; a run is many steps.",
        ("training step", "stop after steps", "max steps", "plotted step(s)"),
    ),
    Term(
        "tokens",
        "The pieces of words a model reads (about three quarters of a word each); time and price grow with them.",
        ("token",),
    ),
    Term(
        "loss",
        "How wrong the model's guesses are on your data: it should go down while it learns; lower is better.",
        ("training loss", "validation loss"),
    ),
    Term(
        "validation",
        "Conversations held back from training and used only to check the model on text it has not seen.",
        ("held-out", "held out"),
    ),
    Term(
        "baseline",
        "The score of a trivial guess (always the most common answer); a model is only useful where it beats it.",
        ("baselines",),
    ),
    Term(
        "overfitting",
        "The model memorises the training conversations instead of learning your style: it gets "
        "worse on held-back ones.",
        ("overfit",),
    ),
    Term(
        "best epoch",
        "The epoch that did best on the held-back conversations; its model is the one kept.",
    ),
    Term(
        "early stopping",
        "Training stops by itself when the held-back score has not improved for a few epochs.",
        ("patience",),
    ),
    Term(
        "checkpoint",
        "A saved copy of training in progress, so a stopped run can continue where it was.",
    ),
    Term(
        "batch",
        "How many messages the computer handles at once; bigger is faster but needs more memory.",
        ("batch size",),
    ),
    Term(
        "gradient accumulation",
        "How many batches are added up before the model changes once: higher acts like a bigger "
        "batch without needing more memory.",
    ),
    Term(
        "throughput",
        "How fast training goes, in messages (examples) handled per second.",
        ("examples/s",),
    ),
    Term(
        "device",
        "The part of the computer that does the training: the CPU (always there) or a graphics card (GPU, much faster).",
    ),
    Term(
        "RAM",
        "The computer's working memory; a model must fit in it (or in the graphics card's VRAM) to train.",
        ("VRAM",),
    ),
    Term(
        "ETA",
        "Estimated time until it finishes.",
    ),
    Term(
        "encoding",
        "The base model reads every message once and turns it into numbers Phase 2 learns from; "
        "done once per base model and reused.",
        ("encode", "encoded"),
    ),
    Term(
        "perplexity",
        "How surprised the model is by real text of yours: lower means it predicts you better.",
    ),
    # --- what Phase 2 learns --------------------------------------------------------------------
    Term(
        "patterns",
        "Twelve habits of thought the app looks for in each message, such as asking a question "
        "back or giving an example.",
        ("pattern",),
    ),
    Term(
        "✓ rules",
        "The app's own rules marked this pattern in the message text; compare with the bar to "
        "see whether the twin agrees.",
        ("✓ data",),
    ),
    Term(
        "macro F1",
        "How well the twin recognises your patterns, from 0 (never) to 1 (always), averaged so rare patterns count too.",
        ("F1", "pattern F1", "pattern accuracy"),
    ),
    Term(
        "trajectory",
        "Where a message sits in its conversation (how deep, how far along, how complex), described by a few numbers.",
        ("trajectory adapter",),
    ),
    Term(
        "depth",
        "How deep into a topic the conversation has gone at this message (0 = just started, 1 = very deep).",
    ),
    Term(
        "sibling order",
        "Who is speaking, as a number: the user side 0.33, the assistant side 0.67 (system 0, tool 1).",
        ("sibling",),
    ),
    Term(
        "homogeneity",
        "How much a message repeats the words of the message before it (1 = the same words, 0 = none shared).",
    ),
    Term(
        "temporal",
        "How far along in the conversation this message comes (0 = the start, 1 = the end).",
    ),
    Term(
        "complexity",
        "How involved the message is: long sentences, rare words and many ideas score higher.",
    ),
    Term(
        "phase",
        "The stage the conversation is in (opening, exploring, deepening, concluding…), guessed from its course.",
        ("phases",),
    ),
    Term(
        "style signature",
        "A fingerprint of how a message is written, as 256 numbers; similar writing gives similar signatures.",
        ("signature", "signatures"),
    ),
    Term(
        "stylometric",
        "Measurable features of writing style, such as sentence length, questions and word variety.",
        ("stylometrics",),
    ),
    Term(
        "cosine",
        "How alike two things the twin compares are (two messages' signatures, or its guess and the real next "
        "turn), from -1 (opposite) through 0 (unrelated) to 1 (the same).",
        ("cosine similarity", "closeness"),
    ),
    Term(
        "PCA",
        "A way to draw many numbers as a flat map: messages written alike land close together.",
        ("style map",),
    ),
    Term(
        "plan steps",
        "What the twin expects to come next in the conversation, one step per turn ahead; each "
        "shows the real messages closest to that guess.",
        ("plan step", "planning"),
    ),
    Term(
        "ablation",
        "A check that shuffles the trajectory numbers: if the score drops, the twin really uses "
        "where a message sits in the conversation.",
        ("shuffled",),
    ),
)


@cache
def _index() -> tuple[re.Pattern, dict[str, Term]]:
    by_spelling: dict[str, Term] = {}
    for term in TERMS:
        for spelling in (term.name, *term.aliases):
            by_spelling.setdefault(spelling.casefold(), term)
    spellings = sorted(by_spelling, key=len, reverse=True)
    # Whole words: no letter or digit just before or after (✓ and dashes count as edges).
    pattern = re.compile(
        r"(?<![\w])(" + "|".join(re.escape(s) for s in spellings) + r")(?![\w])",
        re.IGNORECASE,
    )
    return pattern, by_spelling


def lookup(name: str) -> Term | None:
    """The term spelled `name` (its name or an alias, any case), or None."""
    return _index()[1].get(name.strip().casefold())


def meaning(name: str) -> str:
    """The plain meaning of `name`; KeyError for a word the glossary does not hold."""
    term = lookup(name)
    if term is None:
        raise KeyError(name)
    return term.meaning


def terms_in(text: str) -> list[Term]:
    """The glossary terms `text` mentions, in order of first appearance, each once."""
    pattern, by_spelling = _index()
    found: list[Term] = []
    for match in pattern.finditer(text or ""):
        term = by_spelling[match.group(1).casefold()]
        if term not in found:
            found.append(term)
    return found


def explain(text: str) -> str:
    """'Term: meaning' for every term in `text`, one per line ('' when there is none)."""
    return "\n".join(f"{term.name}: {term.meaning}" for term in terms_in(text))
