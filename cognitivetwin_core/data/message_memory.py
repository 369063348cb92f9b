"""Memory: the person's own past messages, indexed in the workspace, recalled by meaning of words.

    build_memory(workspace)                         # index every message of the twin's speaker
    update_memory(workspace)                        # after an import: only the new conversations
    search_memory(workspace, "where did I grow up?", limit=3)   # [Remembered(text, said_to, score…)]
    remembered_texts(workspace)                     # what evaluation must not count as held out

The vectors live in the workspace's own SQLite file (`memory_messages`, one blob a message),
so the workspace stays one file to copy. This Python's `sqlite3` cannot load extensions
(sqlite-vec), so search is numpy/scipy over the stored vectors: for tens of thousands of
messages that is milliseconds (docs/teaching-and-memory.md has the numbers).

The embedder is offline and needs no model: the message's words less English stop words,
hashed into `DIMENSIONS` buckets (scikit-learn's HashingVectorizer, stateless, so a vector
stored today stays valid) and kept sparse (bucket numbers and counts); inverse document
frequencies are computed over the stored vectors at search time (rare words weigh more),
compared by cosine. Measured on the demo with planted facts, words recalled the fact where
character n-grams did not (docs/teaching-and-memory.md); it finds shared words, not synonyms. Conversations in the held-out share
(`HELD_OUT_SHARE` by `exports.in_validation`) are never indexed, so the judges keep data the
twin cannot recall.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cognitivetwin_core.errors import InputError

EMBEDDER = "words-nostop-hash18"  # stored with each row; a new embedder means a rebuild
DIMENSIONS = 2**18
HELD_OUT_SHARE = 0.2  # evaluation's default held-out share (playground/evaluation.py), seed 0
DEFAULT_LIMIT = 3
MIN_SCORE = 0.2  # below this cosine a message is not about the question
SPEAKER_SETTING = "memory_speaker"  # whose messages the index holds
_BATCH = 512


@dataclass(frozen=True)
class Remembered:
    text: str  # what the person said
    said_to: str  # the message they were answering ("" at a conversation's start)
    conversation_id: str
    turn_index: int
    score: float  # cosine similarity to the question, 0..1


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="word", stop_words="english", n_features=DIMENSIONS, alternate_sign=False, norm=None, lowercase=True
    )


def embed(texts: list[str]):
    """Word counts of each text, hashed: a sparse matrix (rows × DIMENSIONS)."""
    return _vectorizer().transform(texts).tocsr()


def _pack(row) -> bytes:
    """One sparse row as bytes: its bucket numbers (uint32) then their counts (float32)."""
    import numpy as np

    return row.indices.astype(np.uint32).tobytes() + row.data.astype(np.float32).tobytes()


def _unpack(blobs: list[bytes]):
    """The stored rows as one sparse matrix."""
    import numpy as np
    from scipy.sparse import csr_matrix

    sizes = np.array([len(blob) // 8 for blob in blobs], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.concatenate([np.frombuffer(b[: n * 4], dtype=np.uint32) for b, n in zip(blobs, sizes)] or [[]])
    data = np.concatenate([np.frombuffer(b[n * 4 :], dtype=np.float32) for b, n in zip(blobs, sizes)] or [[]])
    return csr_matrix((data, indices.astype(np.int64), indptr), shape=(len(blobs), DIMENSIONS))


def has_memory(workspace) -> bool:
    """Whether the workspace has a memory index (chat uses it by default when it has)."""
    return bool(workspace._query("SELECT 1 FROM memory_messages LIMIT 1"))


def _rows(workspace, conversations, speaker: str) -> list[tuple]:
    from cognitivetwin_core.data.exports import in_validation
    from cognitivetwin_core.data.twin_speaker import is_person

    rows = []
    for conversation in conversations:
        if in_validation(conversation.id, HELD_OUT_SHARE):
            continue
        previous = ""
        for index, message in enumerate(conversation.messages):
            text = message.content.strip()
            if text and is_person(message, speaker):
                rows.append((conversation.id, index, previous, text))
            if text:
                previous = text
    return rows


def _store(workspace, rows: list[tuple]) -> int:
    stored = 0
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        vectors = embed([row[3] for row in batch])
        with workspace._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO memory_messages(conversation_id, turn_index, prompt, content, vector, embedder) "
                "VALUES(?,?,?,?,?,?)",
                [(*row, _pack(vectors[i]), EMBEDDER) for i, row in enumerate(batch)],
            )
        stored += len(batch)
    return stored


def build_memory(workspace) -> int:
    """(Re)build the index from every conversation: the messages of the twin's speaker. Returns their count."""
    speaker = workspace.twin_speaker()
    rows = _rows(workspace, workspace.iter_conversations(), speaker)
    with workspace._transaction() as db:
        db.execute("DELETE FROM memory_messages")
    stored = _store(workspace, rows)
    workspace.set_setting(SPEAKER_SETTING, speaker)
    return stored


def update_memory(workspace) -> int:
    """After an import: index the conversations not indexed yet (a full rebuild when the twin's
    speaker or the embedder changed). Nothing when the workspace has no memory. New rows' count."""
    if not has_memory(workspace):
        return 0
    stale = workspace._query("SELECT 1 FROM memory_messages WHERE embedder != ? LIMIT 1", (EMBEDDER,))
    if stale or workspace.get_setting(SPEAKER_SETTING) != workspace.twin_speaker():
        return build_memory(workspace)
    known = {row[0] for row in workspace._query("SELECT DISTINCT conversation_id FROM memory_messages")}
    new = (c for c in workspace.iter_conversations() if c.id not in known)
    return _store(workspace, _rows(workspace, new, workspace.twin_speaker()))


class _Index:
    """The stored vectors, weighted and ready to search, for one state of the table."""

    def __init__(self, rows: list[tuple]):
        import numpy as np
        from scipy.sparse import diags

        self.rows = [row[:4] for row in rows]  # conversation_id, turn_index, prompt, content
        matrix = _unpack([row[4] for row in rows])
        document_frequency = np.bincount(matrix.indices, minlength=DIMENSIONS)
        self.idf = diags(np.log((1 + len(rows)) / (1 + document_frequency)) + 1.0)
        documents = matrix.log1p() @ self.idf  # sublinear counts: a repeated word is not ten times the evidence
        norms = np.sqrt(np.asarray(documents.multiply(documents).sum(axis=1)).ravel())
        self.documents = (diags(1.0 / np.where(norms > 0, norms, 1.0)) @ documents).tocsr()

    def scores(self, text: str):
        import numpy as np

        query = embed([text]).log1p() @ self.idf
        norm = float(np.sqrt(query.multiply(query).sum())) or 1.0
        return np.asarray((self.documents @ query.T).todense()).ravel() / norm


# One prepared index per workspace database, rebuilt when the table changes (its row count or
# last id): reading and weighting the blobs is most of a search's time (docs/teaching-and-memory.md).
_INDEXES: dict[str, tuple[tuple, _Index]] = {}
_INDEXES_LOCK = threading.Lock()


def _index(workspace) -> _Index | None:
    state = tuple(workspace._query("SELECT COUNT(*), MAX(id) FROM memory_messages")[0])
    if not state[0]:
        return None
    key = str(workspace.db_path)
    with _INDEXES_LOCK:
        cached = _INDEXES.get(key)
        if cached is not None and cached[0] == state:
            return cached[1]
    rows = workspace._query(
        "SELECT conversation_id, turn_index, prompt, content, vector FROM memory_messages ORDER BY id"
    )
    index = _Index(rows)
    with _INDEXES_LOCK:
        _INDEXES[key] = (state, index)
    return index


def search_memory(
    workspace, text: str, *, limit: int = DEFAULT_LIMIT, min_score: float = MIN_SCORE
) -> list[Remembered]:
    """The person's past messages closest to `text`, best first (at most `limit`, each scoring
    at least `min_score`)."""
    import numpy as np

    if not (text or "").strip():
        raise InputError("Give some text to search the memory for.")
    index = _index(workspace)
    if index is None:
        return []
    scores = index.scores(text)
    best = np.argsort(-scores)[:limit]
    return [
        Remembered(index.rows[i][3], index.rows[i][2], index.rows[i][0], int(index.rows[i][1]), float(scores[i]))
        for i in best
        if scores[i] >= min_score
    ]


def remembered_texts(workspace) -> set[str]:
    """Every message the memory may recall, stripped: held-out evaluation leaves out any
    conversation whose reply is one (the twin could recite it rather than write it)."""
    return {row[0] for row in workspace._query("SELECT content FROM memory_messages")}


def memory_prompt(remembered: list[Remembered]) -> str:
    """The remembered messages as a system-prompt paragraph the twin reads before answering."""
    lines = [f'- "{item.text}"' for item in remembered]
    return "Things you have said before, in your own words (use them when they answer the message):\n" + "\n".join(
        lines
    )
