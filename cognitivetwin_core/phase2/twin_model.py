"""CognitiveTwinV2: a frozen base (plus optional LoRA adapter) and the trainable Phase 2
components applied at its output level (docs/data-and-model.md).

The base's own `forward()` runs unchanged (RoPE intact; nothing iterates or patches its
layers): its backbone (`get_decoder()`) gives last hidden states, mean-pooled per message.
The components (`TwinComponents`) work on pooled states only, so training reads cached
vectors and never touches the base.

Pooled states are first standardised with per-dimension statistics of the training
features (`feature_mean`, `feature_std`, saved with the components): decoder outputs carry
a few huge-magnitude dimensions that would otherwise dominate every cosine. The adapter,
the heads and the plan steps all live in that standardised hidden space; `standardize()`
maps any pooled state into it (the playground's neighbour search uses it).

Public API (the seed's, plus folder-style save/load):
    create_cognitivetwin_v2(base_model_path="smollm2-135m", adapter_path=None,
        load_base_model=True, device="auto", plan_steps=4, components_dir=None) -> CognitiveTwinV2
    CognitiveTwinV2.from_pretrained(dir, load_base_model=True, device="auto")
    model.load_custom_components(dir); model.save_custom_components(dir)
    model(input_ids=, attention_mask=, trajectory_coords=[B,5], phase_id=[B], homogeneity=[B],
          pool_mask=None, hidden_states=None) -> TwinOutput(style_signature [B,256],
          pattern_logits [B,12], plan_steps [B,K,hidden], stylometrics, adapted, pooled)
    model.extract_style(input_ids=, attention_mask=None, ...) -> [B,256]
    model.encode_conversation(messages) -> float32 array [messages, hidden]
Saved as `config.json` + `model.safetensors` (components only; no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.annotation.stylometrics import STYLOMETRIC_NAMES
from cognitivetwin_core.atomic_files import write_via_path_atomically
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL
from cognitivetwin_core.phase2.components_folder import CONFIG_NAME, FORMAT_NAME, FORMAT_VERSION, WEIGHTS_NAME
from cognitivetwin_core.phase2.heads import STYLE_DIM, PatternHead, PlanningHead, StyleHead
from cognitivetwin_core.phase2.trajectory_adapter import POSITION_FEATURES, TrajectoryAdapter


@dataclass
class TwinConfig:
    hidden_size: int
    plan_steps: int = 4
    style_dim: int = STYLE_DIM
    adapter_bottleneck: int = 256
    head_inner: int = 256
    pattern_names: list[str] = field(default_factory=lambda: list(PATTERN_NAMES))
    stylometric_names: list[str] = field(default_factory=lambda: list(STYLOMETRIC_NAMES))
    base_model: str = DEFAULT_BASE_MODEL
    adapter: str | None = None
    # EncodingSettings.cache_identity() of the features it was trained on.
    encoding: dict = field(default_factory=dict)
    planning_position: bool = True
    planning_scale: float = 8.0  # PlanningHead's residual scale (1.0 in format 1)

    def to_dict(self) -> dict:
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> TwinConfig:
        if data.get("format") != FORMAT_NAME:
            raise InputError(
                f"{source} is not a CognitiveTwin V2 components config (its 'format' is "
                f"{data.get('format')!r}): point to the output folder of a Phase 2 run."
            )
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(f"{source} was written by a newer CognitiveTwin: update the app to load it.")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if int(data.get("format_version", 0)) < 2:
            values["planning_position"] = False
            values["planning_scale"] = 1.0
        try:
            return cls(**values)
        except TypeError as exc:
            raise InputError(f"{source} is missing a field ({exc}).") from None


@dataclass
class TwinOutput:
    style_signature: torch.Tensor  # [B, style_dim], L2-normalised
    pattern_logits: torch.Tensor  # [B, 12]
    plan_steps: torch.Tensor  # [B, K, hidden], standardised hidden space
    stylometrics: torch.Tensor  # [B, len(STYLOMETRIC_NAMES)] in [0, 1]
    adapted: torch.Tensor  # [B, hidden]: the trajectory adapter's output
    pooled: torch.Tensor | None = None  # [B, hidden]: the raw pooled base state

    def __getitem__(self, key: str):
        return getattr(self, key)


class TwinComponents(nn.Module):
    """Everything Phase 2 trains: the adapter and the three heads, plus the standardisation."""

    def __init__(self, config: TwinConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.trajectory_adapter = TrajectoryAdapter(hidden, bottleneck=config.adapter_bottleneck)
        self.style_head = StyleHead(hidden, config.style_dim, len(config.stylometric_names))
        self.pattern_head = PatternHead(hidden, len(config.pattern_names), inner=config.head_inner)
        self.planning_head = PlanningHead(
            hidden,
            config.plan_steps,
            inner=config.head_inner,
            position_size=POSITION_FEATURES if config.planning_position else 0,
            scale=config.planning_scale,
        )
        self.register_buffer("feature_mean", torch.zeros(hidden))
        self.register_buffer("feature_std", torch.ones(hidden))

    def set_feature_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean.to(self.feature_mean))
        # A floor keeps near-constant dimensions from exploding.
        floor = max(float(std.median()) * 1e-2, 1e-6)
        self.feature_std.copy_(std.clamp_min(floor).to(self.feature_std))

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        return (pooled.to(self.feature_mean.dtype) - self.feature_mean) / self.feature_std

    def forward(
        self,
        pooled: torch.Tensor,
        trajectory_coords: torch.Tensor,
        phase_id: torch.Tensor,
        homogeneity: torch.Tensor,
        standardized: bool = False,
    ) -> TwinOutput:
        z = pooled if standardized else self.standardize(pooled)
        adapted = self.trajectory_adapter(z, trajectory_coords, phase_id, homogeneity)
        signature, stylometrics = self.style_head(adapted)
        return TwinOutput(
            style_signature=signature,
            pattern_logits=self.pattern_head(adapted),
            plan_steps=self.planning_head(
                adapted, self.trajectory_adapter.position_features(trajectory_coords, phase_id, homogeneity)
            ),
            stylometrics=stylometrics,
            adapted=adapted,
            pooled=None if standardized else pooled,
        )


def default_trajectory(batch: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A lone opening user message: depth 0, role user, homogeneity 1, temporal 0, complexity 0.5."""
    coords = torch.tensor([[0.0, 0.33, 1.0, 0.0, 0.5]], device=device).expand(batch, 5)
    return coords, torch.zeros(batch, dtype=torch.long, device=device), torch.ones(batch, device=device)


def save_components(components: TwinComponents, directory: str | Path) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in components.state_dict().items()}
    write_via_path_atomically(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    config_text = json.dumps(components.config.to_dict(), indent=2)
    write_via_path_atomically(directory / CONFIG_NAME, lambda p: p.write_text(config_text, encoding="utf-8"))
    return directory


def read_components_config(directory: str | Path) -> TwinConfig:
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise InputError(
            f"{directory} holds no Phase 2 model (it needs {CONFIG_NAME} and {WEIGHTS_NAME}): "
            "point to the output folder of a finished Phase 2 run."
        )
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{config_path} is not valid JSON ({exc}).") from None
    return TwinConfig.from_dict(data, str(config_path))


def load_components(directory: str | Path, device: str = "cpu", expected_hidden: int | None = None) -> TwinComponents:
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_components_config(directory)
    if expected_hidden is not None and config.hidden_size != expected_hidden:
        raise InputError(
            f"The Phase 2 model in {directory} was trained on a base with hidden size {config.hidden_size} "
            f"({config.base_model}), but this base has hidden size {expected_hidden}: load it with the base "
            "it was trained on."
        )
    components = TwinComponents(config)
    state = load_file(str(directory / WEIGHTS_NAME), device="cpu")
    missing, unexpected = components.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"{directory / WEIGHTS_NAME} does not match its config (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}): the folder is damaged; re-run Phase 2."
        )
    return components.to(device)


def base_hidden_size(base_model: str | Path) -> int:
    """The hidden size without loading weights (config.json, or the catalog)."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base_model)
    if not isinstance(resolved, Path) and not resolved.embedded:
        return resolved.hidden_size
    from cognitivetwin_core.models.loader import base_model_dir

    data = json.loads((Path(base_model_dir(base_model)) / "config.json").read_text(encoding="utf-8"))
    from cognitivetwin_core.models.loader import text_config_dict

    return int(text_config_dict(data)["hidden_size"])


class CognitiveTwinV2(nn.Module):
    def __init__(self, config: TwinConfig, base=None, tokenizer=None, components: TwinComponents | None = None):
        super().__init__()
        self.config = config
        self.components = components or TwinComponents(config)
        self.base = base  # frozen; never saved with the components
        self.tokenizer = tokenizer

    # -- the seed's API -------------------------------------------------------------------

    def load_custom_components(self, directory: str | Path) -> CognitiveTwinV2:
        device = self.components.feature_mean.device
        self.components = load_components(directory, device=str(device), expected_hidden=self.config.hidden_size)
        self.config = self.components.config
        return self

    def save_custom_components(self, directory: str | Path) -> Path:
        return save_components(self.components, directory)

    save_pretrained = save_custom_components

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, load_base_model: bool = True, device: str = "auto"):
        return create_cognitivetwin_v2(components_dir=directory, load_base_model=load_base_model, device=device)

    @property
    def device(self) -> torch.device:
        return self.components.feature_mean.device

    def train(self, mode: bool = True):
        super().train(mode)
        if self.base is not None:
            self.base.eval()  # frozen: dropout off, always
        return self

    def trainable_parameters(self):
        return self.components.parameters()

    def pool(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, pool_mask: torch.Tensor | None = None
    ):
        """Mean of the backbone's last hidden states over `pool_mask` (default: every attended token)."""
        if self.base is None:
            raise CognitiveTwinError("This CognitiveTwinV2 was created without its base model; pass hidden_states.")
        base_device = next(self.base.parameters()).device
        input_ids = input_ids.to(base_device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(base_device)
        weights = (pool_mask if pool_mask is not None else attention_mask).to(base_device).float()
        with torch.no_grad():
            states = self.base.get_decoder()(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            ).last_hidden_state
        pooled = (states.float() * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp_min(1.0)
        return pooled.to(self.device)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        trajectory_coords: torch.Tensor | None = None,
        phase_id: torch.Tensor | None = None,
        homogeneity: torch.Tensor | None = None,
        pool_mask: torch.Tensor | None = None,
        hidden_states: torch.Tensor | None = None,
    ) -> TwinOutput:
        """Outputs for a batch of turns, given as token ids (pooled here) or pooled `hidden_states`.

        Missing trajectory inputs default to a lone opening user message.
        """
        if hidden_states is None:
            if input_ids is None:
                raise ValueError("Pass input_ids or hidden_states.")
            hidden_states = self.pool(input_ids, attention_mask, pool_mask)
        hidden_states = hidden_states.to(self.device)
        batch = hidden_states.shape[0]
        coords, phases, homog = default_trajectory(batch, self.device)
        if trajectory_coords is not None:
            coords = trajectory_coords.to(self.device).float().reshape(batch, 5)
        if phase_id is not None:
            phases = phase_id.to(self.device).long().reshape(batch)
        if homogeneity is not None:
            homog = homogeneity.to(self.device).float().reshape(batch)
        elif trajectory_coords is not None:
            homog = coords[:, 2]
        return self.components(hidden_states, coords, phases, homog)

    def extract_style(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs
    ):
        """The style signature `[B, 256]` (trajectory inputs optional, as in forward)."""
        return self.forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs).style_signature

    def encode_conversation(self, messages, settings=None):
        """Pooled base states of every message of one conversation, float32 [n, hidden]."""
        from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

        if self.base is None or self.tokenizer is None:
            raise CognitiveTwinError("This CognitiveTwinV2 was created without its base model; it cannot encode text.")
        encoder = TurnEncoder(
            self.base,
            self.tokenizer,
            settings or EncodingSettings(**_pooling_settings(self.config.encoding)),
            device=str(next(self.base.parameters()).device),
        )
        return encoder.encode([list(messages)])[0]


def _pooling_settings(encoding: dict) -> dict:
    return {k: encoding[k] for k in ("max_window_tokens", "overlap_tokens", "pooling") if k in encoding}


def create_cognitivetwin_v2(
    base_model_path: str | Path | None = None,
    *,
    adapter_path: str | Path | None = None,
    load_base_model: bool = True,
    device: str = "auto",
    plan_steps: int = 4,
    components_dir: str | Path | None = None,
    base_dtype=None,
) -> CognitiveTwinV2:
    """A CognitiveTwinV2 on `device` (auto: cuda, mps, cpu).

    With `components_dir` (a Phase 2 output) the components are loaded from it, and the base
    and adapter default to the ones it was trained on. Without the base loaded
    (`load_base_model=False`) the model works on pooled `hidden_states` only.
    """
    from cognitivetwin_core.models.devices import select_device

    resolved_device = select_device(device)
    saved = read_components_config(components_dir) if components_dir else None
    if base_model_path is None:
        base_model_path = saved.base_model if saved else DEFAULT_BASE_MODEL
    if adapter_path is None and saved is not None:
        adapter_path = saved.adapter
    base = tokenizer = None
    if load_base_model:
        from cognitivetwin_core.models.frozen_base import load_frozen_base

        base, tokenizer = load_frozen_base(
            base_model_path, adapter_path, device=resolved_device, dtype=base_dtype, merge_adapter=True
        )
        from cognitivetwin_core.models.loader import text_config

        hidden = int(text_config(base.config).hidden_size)
    else:
        hidden = base_hidden_size(base_model_path)
    if components_dir:
        components = load_components(components_dir, device=resolved_device, expected_hidden=hidden)
        config = components.config
    else:
        config = TwinConfig(
            hidden_size=hidden,
            plan_steps=plan_steps,
            base_model=str(base_model_path),
            adapter=str(adapter_path) if adapter_path else None,
        )
        components = TwinComponents(config).to(resolved_device)
    return CognitiveTwinV2(config, base=base, tokenizer=tokenizer, components=components)
