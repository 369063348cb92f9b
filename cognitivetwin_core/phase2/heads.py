"""The three Phase 2 heads, applied to the (trajectory-adapted) pooled turn state.

- StyleHead    -> style signature `[B, 256]`, L2-normalised, plus a linear stylometric
                  readout `[B, len(STYLOMETRIC_NAMES)]` (sigmoid, values in [0, 1]) regressed
                  from the signature so its axes mean something; the trainer starts it at
                  the training means and weighs each feature's error by its spread.
- PatternHead  -> logits `[B, 12]` over PATTERN_NAMES (multi-label, sigmoid).
- PlanningHead -> plan steps `[B, K, hidden]`: step k the expected representation of turn
                  t+k, as a residual on the current one (`up` starts at zero, so an
                  untrained head predicts "the current message", the planning baseline).
                  Each step is also conditioned on the turn's position features (from the
                  TrajectoryAdapter): how far into the conversation a turn is says much
                  about what comes after it (a closing "thanks" at the end, not a question).
"""

from __future__ import annotations

import torch
from torch import nn

STYLE_DIM = 256
NUM_PATTERNS = 12


class StyleHead(nn.Module):
    def __init__(self, hidden_size: int, style_dim: int = STYLE_DIM, num_stylometrics: int = 12, inner: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(hidden_size), nn.Linear(hidden_size, inner), nn.GELU(), nn.Linear(inner, style_dim)
        )
        self.readout = nn.Linear(style_dim, num_stylometrics)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        signature = nn.functional.normalize(self.net(hidden), dim=-1)
        # A unit vector has entries ~1/sqrt(dim): scaled back to ~1 so the readout's weights
        # (and their gradients) are not 16x too small to move in a short run.
        return signature, torch.sigmoid(self.readout(signature * self.readout_scale))

    @property
    def readout_scale(self) -> float:
        return float(self.readout.in_features) ** 0.5

    def init_readout(self, mean: torch.Tensor) -> None:
        """Start the readout at the training mean of each feature (not sigmoid(0) = 0.5)."""
        with torch.no_grad():
            p = mean.to(self.readout.bias).clamp(0.01, 0.99)
            self.readout.bias.copy_(torch.log(p / (1 - p)))


class PatternHead(nn.Module):
    def __init__(self, hidden_size: int, num_patterns: int = NUM_PATTERNS, inner: int = 256, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, inner),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(inner, num_patterns),
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden)


class PlanningHead(nn.Module):
    """`position_size` 0 is the head of runs saved before the position features (format 1)."""

    def __init__(
        self, hidden_size: int, plan_steps: int = 4, inner: int = 256, position_size: int = 0, scale: float = 1.0
    ):
        super().__init__()
        # The residual is multiplied by `scale`: standardised states have norm ~sqrt(hidden), so
        # an unscaled residual needs many more updates than small data gives to turn a plan step
        # away from the current message (the same reason as StyleHead.readout_scale).
        self.scale = scale
        self.hidden_size = hidden_size
        self.plan_steps = plan_steps
        self.inner = inner
        self.norm = nn.LayerNorm(hidden_size)
        self.down = nn.Linear(hidden_size, inner)
        self.step_embedding = nn.Parameter(torch.randn(plan_steps, inner) * 0.02)
        # One projection per step: the position says different things about t+1 and t+4.
        self.position = nn.Linear(position_size, plan_steps * inner) if position_size else None
        self.up = nn.Linear(inner, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        inner = self.down(self.norm(hidden)).unsqueeze(1) + self.step_embedding  # [B, K, inner]
        if self.position is not None and position is not None:
            inner = inner + self.position(position.to(hidden.dtype)).view(-1, self.plan_steps, self.inner)
        return hidden.unsqueeze(1) + self.scale * self.up(nn.functional.gelu(inner))
