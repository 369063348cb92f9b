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
        import torch
        import torch.nn.functional as F

        batch = self._gather(conversation_ids)
        z, out = self._forward(components, batch)
        config = self.config
        # Style: InfoNCE with every other message of the same conversation and role as a positive.
        group = batch["conversation"] * 8 + batch["roles"]
        positives = group[:, None] == group[None, :]
        eye = torch.eye(len(group), dtype=torch.bool, device=group.device)
        positives &= ~eye
        logits = out.style_signature @ out.style_signature.T / config.temperature
        logits = logits.masked_fill(eye, float("-inf"))
        anchors = positives.any(1)
        if anchors.any():
            log_denominator = torch.logsumexp(logits[anchors], dim=1)
            log_numerator = torch.logsumexp(logits[anchors].masked_fill(~positives[anchors], float("-inf")), dim=1)
            style = (log_denominator - log_numerator).mean()
        else:
            style = out.style_signature.sum() * 0.0
        stylometric = (((out.stylometrics - batch["stylometrics"]) * self._stylometric_scale) ** 2).mean()
        # Rare patterns get a heavier positive term (a thresholded F1 would otherwise never fire).
        pattern = F.binary_cross_entropy_with_logits(
            out.pattern_logits, batch["patterns"], pos_weight=self._pattern_pos_weight
        )
        targets = z[batch["plan_targets"]]  # [M, K, hidden]
        cosine = F.cosine_similarity(out.plan_steps, targets, dim=-1)
        mask = batch["plan_mask"]
        planning = ((1 - cosine) * mask).sum() / mask.sum().clamp_min(1.0)
        total = (
            config.weight("style") * style
            + config.weight("stylometric") * stylometric
            + config.weight("pattern") * pattern
            + config.weight("planning") * planning
        )
        losses = {"total": total, "style": style, "stylometric": stylometric, "pattern": pattern, "planning": planning}
        if keep_outputs:
            self._last_outputs = (batch, z, out)
        return losses, len(group)
