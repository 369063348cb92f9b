"""A batch of conversations as tensors on the training device, and its four losses."""

from __future__ import annotations


class BatchLosses:
    """Phase2Trainer's batch part (a mixin: it reads the trainer's config and state)."""

    def _resident(self) -> dict:
        """The cached features (float16) and every per-message target, on the training device,
        copied there once (not rebuilt from the memory map every step). The features follow
        `self._cached`, the targets `self._data` (swapped by anyone who evaluates on altered
        annotations): each is copied again only when it changes."""
        import numpy as np
        import torch

        device = self._device
        resident = getattr(self, "_resident_data", None) or {}
        if resident.get("cached") is not self._cached or resident.get("device") != device:
            features = torch.from_numpy(np.array(self._cached.features, dtype=np.float16, copy=True))
            resident = {"cached": self._cached, "device": device, "features": features.to(device)}
        if resident.get("data") is not self._data:
            data = self._data
            resident["data"] = data
            for name in ("coords", "phases", "homogeneity", "patterns", "stylometrics", "roles"):
                resident[name] = getattr(data, name).to(device)
        self._resident_data = resident
        return resident

    def _gather(self, conversation_ids: list[int]):
        """A batch's tensors, indexed on the device from the resident data: one small host-to-
        device copy (the conversations' row ranges) and no host sync."""
        import torch

        resident = self._resident()
        device = self._device
        offsets = self._data.offsets
        lengths_host = [offsets[c + 1] - offsets[c] for c in conversation_ids]
        rows = sum(lengths_host)
        ranges = torch.tensor([[offsets[c] for c in conversation_ids], lengths_host], dtype=torch.long)
        starts, lengths = ranges.to(device, non_blocking=True)
        local = torch.arange(len(conversation_ids), device=device)
        conv_of = torch.repeat_interleave(local, lengths, output_size=rows)
        position = torch.arange(rows, device=device)
        turn = position - (torch.cumsum(lengths, 0) - lengths)[conv_of]  # the message's index in its conversation
        index = starts[conv_of] + turn
        # Plan targets: the next K messages of the same conversation (row 0 and mask 0 past its end).
        ahead = torch.arange(1, self.config.plan_steps + 1, device=device)
        valid = (turn.unsqueeze(1) + ahead) < lengths[conv_of].unsqueeze(1)
        return {
            "pooled": resident["features"][index].float(),
            "coords": resident["coords"][index],
            "phases": resident["phases"][index],
            "homogeneity": resident["homogeneity"][index],
            "patterns": resident["patterns"][index],
            "stylometrics": resident["stylometrics"][index],
            "roles": resident["roles"][index],
            "conversation": conv_of,
            "plan_targets": torch.where(
                valid, position.unsqueeze(1) + ahead, torch.zeros_like(valid, dtype=torch.long)
            ),
            "plan_mask": valid.float(),
        }

    def _forward(self, components, batch):
        z = components.standardize(batch["pooled"])
        output = components(z, batch["coords"], batch["phases"], batch["homogeneity"], standardized=True)
        return z, output

    def _batch_losses(self, components, conversation_ids, keep_outputs: bool = False):
        """The four losses of one batch and its message count (`_group_losses` of one batch)."""
        parts, examples = self._group_losses(components, [conversation_ids], keep_outputs=keep_outputs)
        return parts[0], examples[0]

    def _group_losses(self, components, batches: list[list[int]], keep_outputs: bool = False):
        """([losses of each batch], [messages of each batch]) from one forward pass over all of them.

        Each batch keeps losses of its own: its InfoNCE compares its messages with each other
        only, and every mean is over its own rows. So the batches of one gradient-accumulation
        update give, from one pass, the losses and gradients of one pass each (equal up to float
        rounding; dropout draws its masks once for all): a step's cost is mostly the hundreds of
        small operations a pass dispatches, not its rows (docs/phase2-training.md, "One pass per
        update").
        """
        import torch
        import torch.nn.functional as F

        batch = self._gather([c for ids in batches for c in ids])
        z, out = self._forward(components, batch)
        config = self.config
        device = z.device
        count = len(batches)
        offsets = self._data.offsets
        examples = [sum(offsets[c + 1] - offsets[c] for c in ids) for ids in batches]
        batch_of_conversation = torch.tensor([k for k, ids in enumerate(batches) for _ in ids], device=device)
        part = batch_of_conversation[batch["conversation"]]  # [M]: the batch each message belongs to

        def per_batch(values, where=part):  # values [M]: summed over each batch's rows
            return torch.zeros(count, dtype=values.dtype, device=device).index_add_(0, where, values)

        rows = torch.tensor(examples, dtype=z.dtype, device=device)

        # Style: InfoNCE with every other message of the same conversation and role as a
        # positive, and the messages of the same batch as the only others.
        group = batch["conversation"] * 8 + batch["roles"]
        eye = torch.eye(len(group), dtype=torch.bool, device=device)
        positives = (group[:, None] == group[None, :]) & ~eye
        logits = out.style_signature @ out.style_signature.T / config.temperature
        logits = logits.masked_fill(eye | (part[:, None] != part[None, :]), float("-inf"))
        anchors = positives.any(1)
        log_denominator = torch.logsumexp(logits[anchors], dim=1)
        log_numerator = torch.logsumexp(logits[anchors].masked_fill(~positives[anchors], float("-inf")), dim=1)
        anchor_losses, anchor_part = log_denominator - log_numerator, part[anchors]
        # A batch without an anchor has style loss 0.
        style = per_batch(anchor_losses, anchor_part) / per_batch(
            torch.ones_like(anchor_losses), anchor_part
        ).clamp_min(1)
        stylometric = (
            per_batch((((out.stylometrics - batch["stylometrics"]) * self._stylometric_scale) ** 2).mean(1)) / rows
        )
        # Rare patterns get a heavier positive term (a thresholded F1 would otherwise never fire).
        pattern = (
            per_batch(
                F.binary_cross_entropy_with_logits(
                    out.pattern_logits, batch["patterns"], pos_weight=self._pattern_pos_weight, reduction="none"
                ).mean(1)
            )
            / rows
        )
        targets = z[batch["plan_targets"]]  # [M, K, hidden]
        cosine = F.cosine_similarity(out.plan_steps, targets, dim=-1)
        mask = batch["plan_mask"]
        planning = per_batch(((1 - cosine) * mask).sum(1)) / per_batch(mask.sum(1)).clamp_min(1.0)
        total = (
            config.weight("style") * style
            + config.weight("stylometric") * stylometric
            + config.weight("pattern") * pattern
            + config.weight("planning") * planning
        )
        named = {"total": total, "style": style, "stylometric": stylometric, "pattern": pattern, "planning": planning}
        if keep_outputs:
            self._last_outputs = (batch, z, out)
        losses = [{name: values[k] for name, values in named.items()} for k in range(count)]
        return losses, examples
