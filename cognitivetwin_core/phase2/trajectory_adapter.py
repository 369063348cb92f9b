"""TrajectoryAdapter: conditions a pooled turn representation on where the turn sits in
its conversation (docs/data-and-model.md), applied at the output level of the frozen base.

    x      = LayerNorm(h) * (1 + scale(homogeneity)) + shift(homogeneity) + coord_mlp(coords)
    update = up(GELU(down(x)))                      # a bottleneck, `up` initialised to zero
    gate   = sigmoid(gate_proj(phase_embedding(phase_id)))   # phase-aware gating
    out    = h + gate * update                      # gated residual

`up` starts at zero, so a fresh adapter is exactly the identity: training starts from the
base's own representation and only moves away from it where that lowers the loss.
`position_features()` gives the planning head the turn's position as plain features (the
5 coordinates, the phase one-hot, homogeneity): what comes next depends on where a turn
sits, which the turn's own text says only in part.

Works on pooled states `[B, hidden]` and on token states `[B, T, hidden]` (conditioning is
broadcast over T).
"""

from __future__ import annotations

import torch
from torch import nn

NUM_COORDINATES = 5
NUM_PHASES = 6
POSITION_FEATURES = NUM_COORDINATES + NUM_PHASES + 1


class TrajectoryAdapter(nn.Module):
    def __init__(self, hidden_size: int, bottleneck: int = 256, coord_hidden: int = 64, num_phases: int = NUM_PHASES):
        super().__init__()
        self.hidden_size = hidden_size
        self.norm = nn.LayerNorm(hidden_size)
        self.coord_mlp = nn.Sequential(
            nn.Linear(NUM_COORDINATES, coord_hidden), nn.GELU(), nn.Linear(coord_hidden, hidden_size)
        )
        self.phase_embedding = nn.Embedding(num_phases, coord_hidden)
        self.gate_proj = nn.Linear(coord_hidden, hidden_size)
        self.modulation = nn.Linear(1, 2 * hidden_size)
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        # Modulation starts neutral (scale 0, shift 0) and the residual starts at zero: identity.
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(
        self, hidden: torch.Tensor, coords: torch.Tensor, phase_id: torch.Tensor, homogeneity: torch.Tensor
    ) -> torch.Tensor:
        coords = coords.to(hidden.dtype)
        homogeneity = homogeneity.to(hidden.dtype).reshape(-1, 1)
        scale, shift = self.modulation(homogeneity).chunk(2, dim=-1)
        condition = self.coord_mlp(coords)
        gate = torch.sigmoid(self.gate_proj(self.phase_embedding(phase_id.long())))
        if hidden.dim() == 3:  # token states: broadcast the per-turn conditioning over T
            scale, shift, condition, gate = (t.unsqueeze(1) for t in (scale, shift, condition, gate))
        x = self.norm(hidden) * (1 + scale) + shift + condition
        update = self.up(nn.functional.gelu(self.down(x)))
        return hidden + gate * update

    @staticmethod
    def position_features(coords: torch.Tensor, phase_id: torch.Tensor, homogeneity: torch.Tensor) -> torch.Tensor:
        """[B, POSITION_FEATURES]: coordinates, phase one-hot, homogeneity (all in [0, 1])."""
        phases = nn.functional.one_hot(phase_id.long().clamp(0, NUM_PHASES - 1), NUM_PHASES).to(coords.dtype)
        return torch.cat([coords, phases, homogeneity.to(coords.dtype).reshape(-1, 1)], dim=-1)
