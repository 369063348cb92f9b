"""The conversations a Phase 2 run trains on, their per-message annotations, the split by
conversation and the feature statistics of the training part."""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import InputError


@dataclass
class MessageAnnotations:
    """Per message arrays, rows in cache order (conversation by conversation)."""

    coords: object  # torch float [M, 5]
    phases: object  # torch long [M]
    homogeneity: object  # torch float [M]
    patterns: object  # torch float [M, 12]
    stylometrics: object  # torch float [M, S]
    roles: object  # torch long [M]
    offsets: list[int]


class TrainingData:
    """Phase2Trainer's data part (a mixin: it reads the trainer's config and state)."""

    def _load_conversations(self) -> tuple[list[Conversation], dict]:
        if self._conversations is not None:
            conversations, source = self._conversations, {"kind": "conversations"}
        elif self._workspace_arg is not None:
            from cognitivetwin_core.data.workspace import Workspace

            self.workspace = (
                self._workspace_arg
                if isinstance(self._workspace_arg, Workspace)
                else Workspace.open(self._workspace_arg)
            )
            chosen = self.config.source
            filters = {"source": chosen} if chosen is not None else {}
            from cognitivetwin_core.data.person_identity import linked_conversations

            # One person across sources: linked aliases carry their one name (docs/importers.md).
            conversations = list(linked_conversations(self.workspace, self.workspace.iter_conversations(**filters)))
            source = {"kind": "workspace", "path": str(self.workspace.path), **filters}
        else:
            if not self.data_file.exists():  # the importers word the rest (a folder, a pipe...)
                raise InputError(f"The data file {self.data_file} does not exist: check the path.")
            from cognitivetwin_core.data.importers import read_conversations

            conversations, _report = read_conversations(self.data_file)
            source = {"kind": "file", "path": str(self.data_file.resolve())}
        conversations = [c for c in conversations if c.messages]
        if not conversations and self.workspace is not None and self.config.source is not None:
            raise InputError(
                f"The workspace {self.workspace.path} has no conversations with messages from the source "
                f"“{self.config.source}”: choose another source, or the whole workspace."
            )
        if not conversations:
            raise InputError("There are no conversations with messages to train on: import some data first.")
        minimum = 2 if self.config.val_fraction > 0 else 1
        if len(conversations) < minimum:
            raise InputError(
                f"Phase 2 needs at least {minimum} conversations (one for validation); the data has "
                f"{len(conversations)}. Import more, or set the validation fraction to 0."
            )
        return conversations, source

    def _start_annotating(self, conversations: list[Conversation]) -> None:
        """Annotate on a background thread while the base encodes (mostly device time)."""
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phase2-annotate")
        self._annotating = (conversations, executor.submit(self._compute_annotations, conversations))
        executor.shutdown(wait=False)

    def _annotations(self, conversations: list[Conversation]) -> MessageAnnotations:
        """The per-message annotations: those started beside the encoding when they are for
        these conversations, else computed now."""
        pending = getattr(self, "_annotating", None)
        if pending is not None and pending[0] is conversations:
            self._annotating = None
            return pending[1].result()
        return self._compute_annotations(conversations)

    def _compute_annotations(self, conversations: list[Conversation]) -> MessageAnnotations:
        import torch

        from cognitivetwin_core.annotation.patterns import pattern_vector, patterns_for
        from cognitivetwin_core.annotation.stylometrics import stylometric_features
        from cognitivetwin_core.annotation.trajectory import annotate

        coords, phases, homogeneity, patterns, stylo, roles, offsets = [], [], [], [], [], [], [0]
        role_ids = {"system": 0, "user": 1, "assistant": 2, "tool": 3}
        for conversation in conversations:
            for message, turn in zip(conversation.messages, annotate(conversation)):
                coords.append([float(x) for x in turn.coordinates])
                phases.append(int(turn.phase_id))
                homogeneity.append(float(turn.homogeneity))
                patterns.append(pattern_vector(patterns_for(message)))
                stylo.append(stylometric_features(message.content))
                roles.append(role_ids.get(message.role, 4))
            offsets.append(offsets[-1] + len(conversation.messages))
        return MessageAnnotations(
            coords=torch.tensor(coords, dtype=torch.float32),
            phases=torch.tensor(phases, dtype=torch.long),
            homogeneity=torch.tensor(homogeneity, dtype=torch.float32),
            patterns=torch.tensor(patterns, dtype=torch.float32),
            stylometrics=torch.tensor(stylo, dtype=torch.float32),
            roles=torch.tensor(roles, dtype=torch.long),
            offsets=offsets,
        )

    def split(self, count: int) -> tuple[list[int], list[int]]:
        """(train, validation) conversation indices: a seeded split by conversation."""
        import torch

        generator = torch.Generator().manual_seed(self.config.seed)
        order = torch.randperm(count, generator=generator).tolist()
        val_count = 0
        if self.config.val_fraction > 0 and count >= 2:
            val_count = min(count - 1, max(1, round(self.config.val_fraction * count)))
        return sorted(order[val_count:]), sorted(order[:val_count])

    # ----- the run --------------------------------------------------------------------------------

    def _feature_statistics(self, conversation_ids: list[int]):
        import numpy as np
        import torch

        cached = self._cached
        hidden = cached.hidden_size
        total = np.zeros(hidden, dtype=np.float64)
        squares = np.zeros(hidden, dtype=np.float64)
        count = 0
        for c in conversation_ids:
            rows = np.asarray(cached.conversation(c), dtype=np.float64)
            total += rows.sum(0)
            squares += (rows * rows).sum(0)
            count += len(rows)
        count = max(count, 1)
        mean = total / count
        variance = np.maximum(squares / count - mean * mean, 0.0)
        return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(variance)).float()
