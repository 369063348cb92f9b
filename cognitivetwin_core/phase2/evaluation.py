"""Phase 2 evaluation on held-out conversations: losses, metrics against their baselines, the
trajectory ablation and the person's style centroid."""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass
class HeldOutCounts:
    """What evaluation sums per validation conversation (row c: the c-th id given), so that
    both the metrics and their bootstrap intervals over conversations come from it."""

    probabilities: object  # numpy [M, P]: pattern probabilities, message by message (for AUC)
    labels: object  # numpy [M, P]
    messages: object  # [C]
    pattern_counts: tuple  # (true positives, predicted, labelled positives), [C, P] each
    plan_model: object  # [C, K]: summed cosine of plan step k to its target
    plan_baseline: object  # [C, K]: the same for "predict the current message"
    plan_counts: object  # [C, K]: turns with a turn k ahead
    style_hits: object  # [C]
    style_anchors: object  # [C]
    style_chance: object  # [C]


class Evaluation:
    """Phase2Trainer's evaluation part (a mixin: it reads the trainer's config and state)."""

    def evaluate(self, components, conversation_ids: list[int]) -> tuple[dict, dict, dict]:
        """(losses, metrics with baselines and intervals, per-pattern metrics) on these conversations."""
        if not conversation_ids:
            return {}, {}, {}
        losses, counts = self._held_out_counts(components, conversation_ids)
        metrics, per_pattern = self._metrics_of(counts)
        return losses, metrics, per_pattern

    def _held_out_counts(self, components, conversation_ids: list[int]) -> tuple[dict, HeldOutCounts]:
        import numpy as np
        import torch
        import torch.nn.functional as F

        from cognitivetwin_core.phase2.metrics import retrieval_rows

        was_training = components.training
        components.eval()
        sums: dict[str, float] = {}
        probabilities, labels = [], []
        per_conversation: dict[str, list] = {name: [] for name in ("tp", "pred", "pos", "model", "base", "n")}
        style = {"hits": [], "anchors": [], "chance": []}
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
                conversation = batch["conversation"]
                size = len(batch_ids)

                def by_conversation(rows, size=size, conversation=conversation):
                    summed = torch.zeros((size, *rows.shape[1:]), dtype=torch.float64, device=rows.device)
                    return summed.index_add_(0, conversation, rows.double()).cpu().numpy()

                probability = torch.sigmoid(out.pattern_logits)
                predicted = (probability >= 0.5).double()
                positive = batch["patterns"].double()
                probabilities.append(probability.cpu().numpy())
                labels.append(positive.cpu().numpy())
                per_conversation["tp"].append(by_conversation(predicted * positive))
                per_conversation["pred"].append(by_conversation(predicted))
                per_conversation["pos"].append(by_conversation(positive))
                targets = z[batch["plan_targets"]]
                mask = batch["plan_mask"]
                # Per step k (turn t+k), against "predict the current message" for that same turn.
                model = F.cosine_similarity(out.plan_steps, targets, dim=-1) * mask
                base = F.cosine_similarity(z.unsqueeze(1).expand_as(targets), targets, dim=-1) * mask
                per_conversation["model"].append(by_conversation(model))
                per_conversation["base"].append(by_conversation(base))
                per_conversation["n"].append(by_conversation(mask))
                group = (conversation * 8 + batch["roles"]).cpu().numpy()
                hit, anchor, chance = retrieval_rows(out.style_signature.cpu().numpy(), group)
                local = conversation.cpu().numpy()
                for name, rows in (("hits", hit), ("anchors", anchor), ("chance", chance)):
                    style[name].append(np.bincount(local, weights=rows.astype(np.float64), minlength=size))
        components.train(was_training)
        joined = {name: np.concatenate(parts) for name, parts in per_conversation.items()}
        offsets = self._data.offsets
        counts = HeldOutCounts(
            probabilities=np.concatenate(probabilities),
            labels=np.concatenate(labels),
            messages=np.array([offsets[c + 1] - offsets[c] for c in conversation_ids], dtype=np.float64),
            pattern_counts=(joined["tp"], joined["pred"], joined["pos"]),
            plan_model=joined["model"],
            plan_baseline=joined["base"],
            plan_counts=joined["n"],
            style_hits=np.concatenate(style["hits"]),
            style_anchors=np.concatenate(style["anchors"]),
            style_chance=np.concatenate(style["chance"]),
        )
        return {name: value / len(batches) for name, value in sums.items()}, counts

    def _metrics_of(self, counts: HeldOutCounts) -> tuple[dict, dict]:
        """The metrics beside their baselines, and under "intervals" the 95% bootstrap interval
        over the validation conversations of each gain (model − baseline; docs/phase2-training.md)."""
        from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
        from cognitivetwin_core.phase2.held_out_intervals import pattern_f1_gain, ratio_gain, resample_weights
        from cognitivetwin_core.phase2.metrics import pattern_metrics

        patterns = pattern_metrics(counts.probabilities, counts.labels, self._train_prior, PATTERN_NAMES)
        step_sum, step_base, step_count = (
            a.sum(0) for a in (counts.plan_model, counts.plan_baseline, counts.plan_counts)
        )
        hits, anchors, chance = (float(a.sum()) for a in (counts.style_hits, counts.style_anchors, counts.style_chance))
        weights = resample_weights(len(counts.messages), self.config.seed)
        plan_total = [a.sum(1) for a in (counts.plan_model, counts.plan_baseline, counts.plan_counts)]
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
            "intervals": {
                "pattern_macro_f1": pattern_f1_gain(weights, counts.pattern_counts, counts.messages, self._train_prior),
                "planning_cosine": ratio_gain(weights, *plan_total),
                "planning_cosine_per_step": ratio_gain(
                    weights, counts.plan_model, counts.plan_baseline, counts.plan_counts
                ),
                "style_retrieval": ratio_gain(weights, counts.style_hits, counts.style_chance, counts.style_anchors),
            },
        }
        return metrics, patterns["per_pattern"]

    def trajectory_ablation(self, components, conversation_ids: list[int], repeats: int = 5) -> dict | None:
        """Each head's held-out metric with the true trajectories and with trajectories
        shuffled across the validation messages (seeded; the mean of `repeats` shuffles), and
        the 95% interval over conversations of true − shuffled:
        {"patterns": {"metric", "true", "shuffled", "interval"}, "planning": {...}, "style": {...}}."""
        import torch

        from cognitivetwin_core.phase2.held_out_intervals import (
            pattern_f1_difference,
            ratio_gain,
            resample_weights,
        )

        if not conversation_ids:
            return None
        data = self._data
        heads = {"patterns": "pattern_macro_f1", "planning": "planning_cosine", "style": "style_retrieval"}
        _, true_counts = self._held_out_counts(components, conversation_ids)
        true_metrics, _ = self._metrics_of(true_counts)
        rows = torch.tensor([i for c in conversation_ids for i in range(data.offsets[c], data.offsets[c + 1])])
        generator = torch.Generator().manual_seed(self.config.seed + 7919)
        shuffled: dict[str, list[float]] = {head: [] for head in heads}
        shuffled_counts = []
        try:
            for _ in range(repeats):
                permuted = rows[torch.randperm(len(rows), generator=generator)]
                swapped = copy.copy(data)
                for name in ("coords", "phases", "homogeneity"):
                    values = getattr(data, name).clone()
                    values[rows] = getattr(data, name)[permuted]
                    setattr(swapped, name, values)
                self._data = swapped
                _, counts = self._held_out_counts(components, conversation_ids)
                shuffled_counts.append(counts)
                metrics, _ = self._metrics_of(counts)
                for head, key in heads.items():
                    if metrics.get(key) is not None:
                        shuffled[head].append(metrics[key])
        finally:
            self._data = data

        def mean_of(name):  # a per-conversation count averaged over the shuffles
            return sum(getattr(c, name) for c in shuffled_counts) / len(shuffled_counts)

        weights = resample_weights(len(conversation_ids), self.config.seed + 7919)
        shuffled_patterns = tuple(
            sum(c.pattern_counts[i] for c in shuffled_counts) / len(shuffled_counts) for i in range(3)
        )
        intervals = {
            "patterns": pattern_f1_difference(weights, true_counts.pattern_counts, shuffled_patterns),
            "planning": ratio_gain(
                weights, true_counts.plan_model.sum(1), mean_of("plan_model").sum(1), true_counts.plan_counts.sum(1)
            ),
            "style": ratio_gain(weights, true_counts.style_hits, mean_of("style_hits"), true_counts.style_anchors),
        }
        return {
            head: {
                "metric": key,
                "true": true_metrics.get(key),
                "shuffled": sum(shuffled[head]) / len(shuffled[head]) if shuffled[head] else None,
                "interval": intervals[head],
            }
            for head, key in heads.items()
        }

    def _save_person_style(self, components, conversations) -> None:
        """The person's style centroid (the mean signature of the twin speaker's messages, train
        and validation) saved with the run (person_style.json), for the playground's style map."""
        import torch

        from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, is_person
        from cognitivetwin_core.phase2.person_style import PersonStyle, centroid_of, save_person_style

        speaker = DEFAULT_TWIN_SPEAKER
        if self.workspace is not None:
            from cognitivetwin_core.data.person_identity import canonical, speaker_links

            speaker = canonical(speaker_links(self.workspace), self.workspace.twin_speaker())
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
