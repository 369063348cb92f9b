"""Authorship verification: is this reply the person's? A judge that never saw the twin's
training (docs/judging.md).

    judge = AuthorshipJudge(seed=0).fit(person_texts, impostor_texts)
    judge.probability(["see u there lol"])   # [0.91]: the chance it takes the text for the person's

    result = judge_authorship(conversations, seed=0)   # cross-fitted over the held-out conversations
    result["real"], result["others"]   # the ceiling and the floor, {"share", "low", "high"}
    result["twin"], result["base"]     # the twin's and the base's replies to the same contexts
    result["verdict"]                  # "closer to you than the base: yes" / "no clear difference" / too little data

The verifier is the general-impostors idea in its simplest form: character n-grams (1–4,
case and punctuation kept: how someone types) and function-word rates (what they cannot
help using), a balanced logistic regression of the person's messages against the other
participants' and a small reference population shipped in resources/judging (so a source
with only the person's messages still has impostors). Cross-fitting: conversations are
dealt into folds; each fold's replies (real, others', twin's, base's) are judged by a model
fitted on the other folds only, so no scored reply was ever fitted on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cognitivetwin_core.paths import resources_dir
from cognitivetwin_core.playground.judges.intervals import excludes_zero, interval, pooled_share, share_interval

FUNCTION_WORDS = tuple(
    dict.fromkeys(
        [
            "a",
            "about",
            "above",
            "after",
            "again",
            "against",
            "all",
            "am",
            "an",
            "and",
            "any",
            "are",
            "as",
            "at",
            "be",
            "because",
            "been",
            "before",
            "being",
            "below",
            "between",
            "both",
            "but",
            "by",
            "can",
            "could",
            "did",
            "do",
            "does",
            "doing",
            "down",
            "during",
            "each",
            "few",
            "for",
            "from",
            "further",
            "had",
            "has",
            "have",
            "having",
            "he",
            "her",
            "here",
            "hers",
            "herself",
            "him",
            "himself",
            "his",
            "how",
            "i",
            "if",
            "in",
            "into",
            "is",
            "it",
            "its",
            "itself",
            "just",
            "me",
            "more",
            "most",
            "my",
            "myself",
            "no",
            "nor",
            "not",
            "now",
            "of",
            "off",
            "on",
            "once",
            "only",
            "or",
            "other",
            "our",
            "ours",
            "ourselves",
            "out",
            "over",
            "own",
            "same",
            "she",
            "should",
            "so",
            "some",
            "such",
            "than",
            "that",
            "the",
            "their",
            "theirs",
            "them",
            "themselves",
            "then",
            "there",
            "these",
            "they",
            "this",
            "those",
            "through",
            "to",
            "too",
            "under",
            "until",
            "up",
            "very",
            "was",
            "we",
            "were",
            "what",
            "when",
            "where",
            "which",
            "while",
            "who",
            "whom",
            "why",
            "will",
            "with",
            "would",
            "you",
            "your",
            "yours",
            "yourself",
            "yourselves",
            "yeah",
            "yes",
            "ok",
            "okay",
            "oh",
            "well",
            "like",
            "really",
            "actually",
            "maybe",
            "also",
            "though",
            "still",
            "even",
            "anyway",
            "gonna",
            "wanna",
            "lol",
            "haha",
        ]
    )
)
REFERENCE_FILE = ("judging", "reference_messages.txt")
DEFAULT_FOLDS = 5
THRESHOLD = 0.5  # a balanced classifier: above even odds, it takes the text for the person's
MIN_PERSON_MESSAGES = 8
MIN_CEILING = 0.6
MIN_SEPARATION = 0.3
SCALE = (
    "the share of replies an independent judge takes for yours, from 0% (never) to 100% (always); "
    "it was fitted on your messages the twin did not train on, never on the twin. Your own real "
    "replies set the top it can reach, other people's the bottom."
)


def reference_messages() -> list[str]:
    """The shipped reference population: generic written messages by no one in the workspace."""
    path = resources_dir().joinpath(*REFERENCE_FILE)
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class AuthorshipJudge:
    """Character n-grams and function words, person against impostors (see the module text)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._model = None

    def fit(self, person: list[str], impostors: list[str]) -> AuthorshipJudge:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        if not person or not impostors:
            raise ValueError("the judge needs messages of the person and of someone else")
        features = make_union(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 4), lowercase=False, sublinear_tf=True, min_df=1),
            TfidfVectorizer(vocabulary=FUNCTION_WORDS, token_pattern=r"(?u)\b[\w']+\b", use_idf=False),
        )
        classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=self.seed)
        self._model = make_pipeline(features, classifier)
        self._model.fit(list(person) + list(impostors), [1] * len(person) + [0] * len(impostors))
        return self

    def probability(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return [float(p) for p in self._model.predict_proba([t or " " for t in texts])[:, 1]]

    @classmethod
    def for_texts(cls, person: list[str], others: list[str], *, seed: int = 0) -> AuthorshipJudge:
        return cls(seed).fit(person, list(others) + reference_messages())


@dataclass
class JudgedConversation:
    """One held-out conversation: the person's replies, the others' messages, and the twin's and
    the base's answers to contexts taken from it."""

    person: list[str]
    others: list[str] = field(default_factory=list)
    twin: list[str] = field(default_factory=list)
    base: list[str] = field(default_factory=list)


def judge_authorship(conversations: list[JudgedConversation], *, folds: int = DEFAULT_FOLDS, seed: int = 0) -> dict:
    """Cross-fitted shares judged to be the person, with intervals over conversations, and the
    verdict (see the module text). `probabilities` keeps, per conversation, the twin's and the
    base's scores in the order given."""
    usable = [i for i, c in enumerate(conversations) if c.person]
    person_count = sum(len(conversations[i].person) for i in usable)
    k = min(folds, len(usable))
    reference = reference_messages()
    empty = {"twin": [[] for _ in conversations], "base": [[] for _ in conversations]}
    if k < 2:
        return _too_little(person_count, None, None, empty)
    order = usable[:]
    random.Random(seed).shuffle(order)
    fold_of = {index: n % k for n, index in enumerate(order)}
    ref_fold = [n % k for n in range(len(reference))]
    judged = {who: [[] for _ in conversations] for who in ("real", "others", "twin", "base", "reference")}
    probabilities = {"twin": [[] for _ in conversations], "base": [[] for _ in conversations]}
    for fold in range(k):
        train_person, train_impostors = [], []
        for index in usable:
            if fold_of[index] != fold:
                train_person += conversations[index].person
                train_impostors += conversations[index].others
        train_impostors += [text for text, f in zip(reference, ref_fold) if f != fold]
        judge = AuthorshipJudge(seed).fit(train_person, train_impostors)
        for index in usable:
            if fold_of[index] != fold:
                continue
            conversation = conversations[index]
            for who, texts in (("real", conversation.person), ("others", conversation.others)):
                judged[who][index] = [p >= THRESHOLD for p in judge.probability(texts)]
            for who in ("twin", "base"):
                scores = judge.probability(getattr(conversation, who))
                probabilities[who][index] = scores
                judged[who][index] = [p >= THRESHOLD for p in scores]
        judged["reference"].append(
            [p >= THRESHOLD for p in judge.probability([t for t, f in zip(reference, ref_fold) if f == fold])]
        )
    result = {who: share_interval(judged[who], seed=seed) for who in ("real", "twin", "base")}
    has_others = any(judged["others"])
    result["others"] = share_interval(judged["others"] if has_others else judged["reference"], seed=seed)
    result["floor_from"] = "the other participants' messages" if has_others else "the reference population"
    paired = [(judged["twin"][i], judged["base"][i]) for i in usable if judged["twin"][i] and judged["base"][i]]
    result["twin_minus_base"] = interval(
        paired,
        lambda groups: _difference(groups),
        seed=seed,
    )
    result["probabilities"] = probabilities
    result["messages"] = {"person": person_count, "conversations": len(usable)}
    ceiling, floor = result["real"], result["others"]
    if person_count < MIN_PERSON_MESSAGES or ceiling is None or floor is None:
        return {**_too_little(person_count, ceiling, floor, probabilities), **result, "reliable": False}
    if ceiling["share"] < MIN_CEILING or ceiling["share"] - floor["share"] < MIN_SEPARATION:
        return {**_too_little(person_count, ceiling, floor, probabilities), **result, "reliable": False}
    result["reliable"] = True
    result["verdict"] = closer_verdict(result["twin_minus_base"])
    result["headline"] = authorship_headline(result)
    result["scale"] = SCALE
    return result


def _difference(groups: list[tuple[list[bool], list[bool]]]) -> float | None:
    twin = pooled_share([g[0] for g in groups])
    base = pooled_share([g[1] for g in groups])
    return None if twin is None or base is None else twin - base


def closer_verdict(difference: dict | None) -> str:
    """The twin against the base in words: "yes" only when the interval lies wholly above zero."""
    side = excludes_zero(difference)
    if side > 0:
        return "closer to you than the base: yes"
    if side < 0:
        return "closer to you than the base: no, the base is closer"
    return "closer to you than the base: no clear difference"


def _percent(value: dict | None) -> str:
    if not value:
        return "—"
    return f"{value['share']:.0%} ({value['low']:.0%}–{value['high']:.0%})"


def authorship_headline(result: dict) -> str:
    if not result.get("reliable"):
        return result.get("verdict", "")
    return (
        f"judged to be you: your real replies {_percent(result['real'])} · others {_percent(result['others'])} · "
        f"twin {_percent(result.get('twin'))} · base {_percent(result.get('base'))}"
    )


def _too_little(person_count: int, ceiling, floor, probabilities) -> dict:
    if ceiling is None or person_count < MIN_PERSON_MESSAGES:
        why = f"only {person_count} of your held-out messages to learn your writing from"
    else:
        why = (
            f"the judge recognises your own held-out replies only {ceiling['share']:.0%} of the time "
            f"(other people's {floor['share']:.0%})"
        )
    verdict = f"too little data to judge: {why}"
    return {"reliable": False, "verdict": verdict, "headline": verdict, "scale": SCALE, "probabilities": probabilities}
