"""Phase 2 evaluation on held-out conversations: losses, metrics against their baselines, the
trajectory ablation and the person's style centroid."""

from __future__ import annotations

import copy


class Evaluation:
    """Phase2Trainer's evaluation part (a mixin: it reads the trainer's config and state)."""

    def evaluate(self, components, conversation_ids: list[int]) -> tuple[dict, dict, dict]:
        """(losses, metrics with baselines, per-pattern metrics) on these conversations."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
        from cognitivetwin_core.phase2.metrics import pattern_metrics, retrieval_hits

        if not conversation_ids:
            return {}, {}, {}
        was_training = components.training
        components.eval()
        sums: dict[str, float] = {}
        probabilities, labels = [], []
        K = self.config.plan_steps
        step_sum, step_base, step_count = np.zeros(K), np.zeros(K), np.zeros(K)
        hits = anchors = 0
        chance = 0.0
        batches = [
            conversation_ids[i : i + self.config.batch_size]
            for i in range(0, len(conversation_ids), self.config.batch_size)
        ]
        with torch.no_grad():
            for batch_ids in batches:
                losses, _ = self._batch_losses(components, batch_ids, keep_outputs=True)
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                batch, z, out = self._last_outputs
                self._last_outputs = None
                probabilities.append(torch.sigmoid(out.pattern_logits).cpu().numpy())
                labels.append(batch["patterns"].cpu().numpy())
                targets = z[batch["plan_targets"]]
                mask = batch["plan_mask"]
                # Per step k (turn t+k), against "predict the current message" for that same turn.
                step_sum += (F.cosine_similarity(out.plan_steps, targets, dim=-1) * mask).sum(0).cpu().numpy()
                step_base += (
                    (F.cosine_similarity(z.unsqueeze(1).expand_as(targets), targets, dim=-1) * mask)
                    .sum(0)
                    .cpu()
                    .numpy()
                )
                step_count += mask.sum(0).cpu().numpy()
                group = (batch["conversation"] * 8 + batch["roles"]).cpu().numpy()
                h, a, ch = retrieval_hits(out.style_signature.cpu().numpy(), group)
                hits, anchors, chance = hits + h, anchors + a, chance + ch
        components.train(was_training)
        losses = {name: value / len(batches) for name, value in sums.items()}
        patterns = pattern_metrics(
            np.concatenate(probabilities), np.concatenate(labels), self._train_prior, PATTERN_NAMES
        )
        metrics = {
            "pattern_macro_f1": patterns["macro_f1"],
            "pattern_macro_f1_baseline": patterns["macro_f1_baseline"],
            "pattern_macro_auc": patterns["macro_auc"],
            "pattern_macro_auc_baseline": patterns["macro_auc_baseline"],
            "planning_cosine": float(step_sum.sum() / step_count.sum()) if step_count.sum() else None,
            "planning_cosine_baseline": float(step_base.sum() / step_count.sum()) if step_count.sum() else None,
            # Step k looks k turns ahead; None where no validation turn has a turn k ahead.
            "planning_cosine_per_step": [float(a / n) if n else None for a, n in zip(step_sum, step_count)],
            "planning_cosine_baseline_per_step": [float(b / n) if n else None for b, n in zip(step_base, step_count)],
            "style_retrieval": hits / anchors if anchors else None,
            "style_retrieval_chance": chance / anchors if anchors else None,
        }
        return losses, metrics, patterns["per_pattern"]

    def trajectory_ablation(self, components, conversation_ids: list[int], repeats: int = 5) -> dict | None:
        """Each head's held-out metric with the true trajectories and with trajectories
        shuffled across the validation messages (seeded; the mean of `repeats` shuffles):
        {"patterns": {"true", "shuffled"}, "planning": {...}, "style": {...}}."""
        import torch

        if not conversation_ids:
            return None
        data = self._data
        heads = {"patterns": "pattern_macro_f1", "planning": "planning_cosine", "style": "style_retrieval"}
        _, true_metrics, _ = self.evaluate(components, conversation_ids)
        rows = torch.tensor([i for c in conversation_ids for i in range(data.offsets[c], data.offsets[c + 1])])
        generator = torch.Generator().manual_seed(self.config.seed + 7919)
        shuffled: dict[str, list[float]] = {head: [] for head in heads}
        try:
            for _ in range(repeats):
                permuted = rows[torch.randperm(len(rows), generator=generator)]
                swapped = copy.copy(data)
                for name in ("coords", "phases", "homogeneity"):
                    values = getattr(data, name).clone()
                    values[rows] = getattr(data, name)[permuted]
                    setattr(swapped, name, values)
                self._data = swapped
                _, metrics, _ = self.evaluate(components, conversation_ids)
                for head, key in heads.items():
                    if metrics.get(key) is not None:
                        shuffled[head].append(metrics[key])
        finally:
            self._data = data
        return {
            head: {
                "metric": key,
                "true": true_metrics.get(key),
                "shuffled": sum(shuffled[head]) / len(shuffled[head]) if shuffled[head] else None,
            }
            for head, key in heads.items()
        }

    def _save_person_style(self, components, conversations) -> None:
        """The person's style centroid (the mean signature of the twin speaker's messages, train
        and validation) saved with the run (person_style.json), for the playground's style map."""
        import torch

        from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, is_person
        from cognitivetwin_core.phase2.person_style import PersonStyle, centroid_of, save_person_style

        speaker = self.workspace.twin_speaker() if self.workspace is not None else DEFAULT_TWIN_SPEAKER
        signatures = []
        components.eval()
        with torch.no_grad():
            for start in range(0, len(conversations), self.config.batch_size):
                ids = list(range(start, min(start + self.config.batch_size, len(conversations))))
                _, out = self._forward(components, self._gather(ids))
                rows = out.style_signature.float().cpu().tolist()
                person = [is_person(m, speaker) for c in ids for m in conversations[c].messages]
                signatures.extend(row for row, mine in zip(rows, person) if mine)
        if not signatures:
            self.run_record["person_style"] = None
            return
        centroid, count = centroid_of(signatures)
        save_person_style(self.output_dir, PersonStyle(speaker, centroid, count))
        self.run_record["person_style"] = {"speaker": speaker, "messages": count}
