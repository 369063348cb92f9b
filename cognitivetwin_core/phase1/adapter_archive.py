"""Downloaded adapter archives (`.tar.zst`): safe extraction and the PEFT folder check.

Together sends a LoRA adapter as a zstd-compressed tar with `adapter_config.json` and
`adapter_model.safetensors` at its root. The archive comes from the network, so it is
read as a stream and every member is checked *before* anything is written: absolute
names, `..`, links, devices and FIFOs are refused (tarfile's "data" filter would silently
repair a leading `/`; this refuses), and the total size and member count are capped.
Extraction goes to a temporary sibling folder that replaces the target only once the
result is a valid PEFT adapter, so a bad or truncated download leaves nothing behind.

`adapter_config.json` is then made loadable: Together's `-Reference` base ids (not public
Hugging Face repos) are rewritten to the catalog's repo, and keys this PEFT version does
not know are dropped (recorded under `dropped_config_keys` in the lineage).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tarfile
import uuid
from pathlib import Path, PurePosixPath

from cognitivetwin_core.atomic_files import replace_dir, write_json_atomically
from cognitivetwin_core.errors import CognitiveTwinError, InputError, os_error
from cognitivetwin_core.models.catalog import CATALOG, spec_for_together_id

MAX_TOTAL_BYTES = 4 * 1024**3  # a LoRA adapter of an 8B model at rank 64 is well under 1 GiB
MAX_MEMBERS = 2000
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
LINEAGE_NAME = "lineage.json"


class AdapterArchiveError(CognitiveTwinError):
    """The archive is unsafe, damaged, or not a PEFT adapter."""


def _safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or AdapterArchiveError if it could land outside the target."""
    if not name or "\x00" in name:
        raise AdapterArchiveError("The adapter archive has an entry with an empty name; it was not extracted.")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise AdapterArchiveError(
            f"The adapter archive has an absolute path ({name!r}); it was refused and nothing was extracted."
        )
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise AdapterArchiveError(
            f"The adapter archive has a path that climbs out of its folder ({name!r}); "
            "it was refused and nothing was extracted."
        )
    clean = [p for p in parts if p not in ("", ".")]
    return PurePosixPath(*clean) if clean else PurePosixPath(".")


def _iter_tar_stream(archive: Path):
    """Yield (TarInfo, file object) from a .tar.zst (or plain .tar) without seeking."""
    import zstandard

    with open(archive, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic == b"\x28\xb5\x2f\xfd":
            stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        else:
            stream = raw
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                yield member, tar


def extract_adapter_archive(
    archive: str | Path,
    target: str | Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    config_changes: dict | None = None,
) -> Path:
    """Extract `archive` into the folder `target` (replaced atomically); return `target`.

    What `prepare_adapter_config` changed in adapter_config.json is added to `config_changes`.
    """
    archive, target = Path(archive), Path(target)
    staging = target.parent / f".extract-{uuid.uuid4().hex}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:  # a folder the user may not write in, a read-only or full disk
        raise os_error(exc, "writing the adapter in", target.parent) from None
    try:
        total = 0
        count = 0
        try:
            for member, tar in _iter_tar_stream(archive):
                count += 1
                if count > max_members:
                    raise AdapterArchiveError(
                        f"The adapter archive has more than {max_members} entries; it was refused."
                    )
                relative = _safe_member_path(member.name)
                if member.issym() or member.islnk():
                    raise AdapterArchiveError(
                        f"The adapter archive contains a link ({member.name!r} -> "
                        f"{member.linkname!r}); it was refused and nothing was extracted."
                    )
                if member.isdir():
                    (staging / relative).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise AdapterArchiveError(
                        f"The adapter archive contains a device or special file ({member.name!r}); it was refused."
                    )
                total += member.size
                if total > max_total_bytes:
                    raise AdapterArchiveError(
                        f"The adapter archive unpacks to more than {max_total_bytes // 1024**2} MiB; it was refused."
                    )
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(destination, "wb") as handle:
                    shutil.copyfileobj(source, handle, 1 << 20)
        except AdapterArchiveError:
            raise
        except (tarfile.TarError, EOFError, OSError, Exception) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise AdapterArchiveError(f"Could not write the adapter to {target.parent}: {exc.strerror}.") from exc
            raise AdapterArchiveError(
                f"The adapter archive {archive.name} is damaged or incomplete ({type(exc).__name__}); download it again."
            ) from exc
        if count == 0:
            raise AdapterArchiveError(f"The adapter archive {archive.name} is empty; download it again.")
        folder = _adapter_root(staging)
        verify_peft_adapter_dir(folder, label=f"the archive {archive.name}")
        changes = prepare_adapter_config(folder)
        if config_changes is not None:
            config_changes.update(changes)
        if folder != staging:  # one nested folder: lift its content to the target's root
            lifted = target.parent / f".extract-{uuid.uuid4().hex}"
            os.replace(folder, lifted)
            shutil.rmtree(staging)
            staging = lifted
        replace_dir(staging, target)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _adapter_root(folder: Path) -> Path:
    if (folder / CONFIG_NAME).is_file():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / CONFIG_NAME).is_file():
        return entries[0]
    return folder


def _safetensors_keys(path: Path) -> list[str]:
    """Tensor names from a safetensors header (no tensors loaded, nothing executed)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError("too short")
        (length,) = struct.unpack("<Q", head)
        if length <= 0 or length > 100 * 1024**2:
            raise ValueError("bad header length")
        header = json.loads(handle.read(length))
    return [k for k in header if k != "__metadata__"]


def verify_peft_adapter_dir(folder: str | Path, *, label: str | None = None) -> dict:
    """Check `folder` holds a PEFT LoRA adapter; return its config. Raises AdapterArchiveError.

    `label` names the folder in messages (e.g. the archive, when `folder` is a staging folder).
    """
    folder = Path(folder)
    where = label or str(folder)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise AdapterArchiveError(f"{where} is not a PEFT adapter: it has no {CONFIG_NAME}.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdapterArchiveError(
            f"{CONFIG_NAME} in {where} is not valid JSON ({exc}); download the adapter again."
        ) from None
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise AdapterArchiveError(
            f"{CONFIG_NAME} in {where} does not describe a LoRA adapter (peft_type is "
            f"{config.get('peft_type') if isinstance(config, dict) else None!r})."
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise AdapterArchiveError(f"{where} is not a PEFT adapter: it has no {WEIGHTS_NAME}.")
    try:
        keys = _safetensors_keys(weights)
    except (ValueError, OSError) as exc:
        raise AdapterArchiveError(
            f"{WEIGHTS_NAME} in {where} is not a readable safetensors file ({exc}); download it again."
        ) from None
    if not any("lora_" in key for key in keys):
        raise AdapterArchiveError(f"{WEIGHTS_NAME} in {where} holds no LoRA weights; it is not a LoRA adapter.")
    return config


def public_base_id(base_id: str | None) -> str | None:
    """The Hugging Face repo for a Together base id (`-Reference` ids are not public repos)."""
    if not base_id:
        return base_id
    spec = spec_for_together_id(base_id)
    if spec is not None:
        return spec.hf_repo
    if base_id.endswith("-Reference"):
        return base_id[: -len("-Reference")]
    return base_id


def prepare_adapter_config(folder: str | Path) -> dict:
    """Rewrite the base id to a public repo and drop keys this PEFT rejects; return what changed."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    config = json.loads(config_path.read_text(encoding="utf-8"))
    changes: dict = {}
    base = config.get("base_model_name_or_path")
    public = public_base_id(base)
    if public != base:
        changes["base_model_rewritten_from"] = base
        config["base_model_name_or_path"] = public
    try:
        from peft import LoraConfig

        known = set(LoraConfig.__dataclass_fields__) | {
            "peft_type",
            "auto_mapping",
            "base_model_name_or_path",
            "revision",
            "task_type",
            "inference_mode",
            "peft_version",
        }
        dropped = sorted(k for k in config if k not in known)
        for key in dropped:
            config.pop(key)
        if dropped:
            changes["dropped_config_keys"] = dropped
    except ImportError:  # without peft nothing will load it anyway; keep the file as sent
        pass
    if changes:
        write_json_atomically(config_path, config, default=str)
    return changes


def write_lineage(folder: str | Path, lineage: dict) -> Path:
    """Write `lineage.json` (where the adapter came from) beside the adapter files."""
    path = Path(folder) / LINEAGE_NAME
    write_json_atomically(path, lineage, default=str)
    return path


def read_lineage(folder: str | Path, *, damaged_is_error: bool = False) -> dict | None:
    """The adapter's `lineage.json`, or None when it is missing or unreadable; with
    `damaged_is_error`, one that is there but empty or not a JSON object is one sentence
    (what it records, such as the validation split, must not be guessed)."""
    path = Path(folder) / LINEAGE_NAME
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if not damaged_is_error:
            return None
        if isinstance(exc, OSError):
            raise os_error(exc, "reading", path) from None
        value = None
    if isinstance(value, dict):
        return value
    if damaged_is_error:
        raise InputError(
            f"{path} is damaged (empty or not a JSON object): download or train the adapter again, or remove "
            "that file and pass --workspace so the conversations it did not train on can be found."
        )
    return None


def adapter_base_model(adapter_dir: str | Path) -> str:
    """The base an adapter was trained on: a catalog name or folder (lineage first, then its config)."""
    folder = Path(adapter_dir)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(
            f"{folder} is not a LoRA adapter folder (no {CONFIG_NAME}): point to a Phase 1 output "
            "(a local run's adapter, or a Together job downloaded with `cognitivetwin phase1 --download`)."
        )
    base = (read_lineage(folder, damaged_is_error=True) or {}).get("base_model")
    if base and (base in CATALOG or Path(base).is_dir()):
        return base
    config = json.loads(config_path.read_text(encoding="utf-8"))
    repo = public_base_id(config.get("base_model_name_or_path"))
    for spec in CATALOG.values():
        if repo in (spec.hf_repo, spec.together_id):
            return spec.short_name
    if repo and Path(repo).is_dir():
        return repo
    raise InputError(
        f"The adapter in {folder} names a base ({repo}) that is not in the catalog: pass --base-model "
        "with the catalog name or the folder of that base."
    )


MAX_LOSS_CURVE_POINTS = 2000  # a long run's curve is thinned to this many [step, loss] pairs


def loss_curve_points(losses: list[float], max_points: int = MAX_LOSS_CURVE_POINTS) -> list[list[float]]:
    """[step, loss] pairs of a run's per-step losses (step 1 first) for its lineage; every k-th
    step of a long run, always with the last, so the drawn curve ends where the run ended."""
    if not losses:
        return []
    stride = -(-len(losses) // max_points)
    steps = list(range(1, len(losses) + 1, stride))
    if steps[-1] != len(losses):
        steps.append(len(losses))
    return [[step, losses[step - 1]] for step in steps]


def read_loss_curve(lineage: dict) -> list[tuple[int, float]]:
    """The [step, loss] pairs a lineage keeps (empty for runs from before they were kept, or when
    the entry is not a list of number pairs)."""
    points = lineage.get("loss_curve")
    if not isinstance(points, list):
        return []
    curve = []
    for point in points:
        if (
            isinstance(point, list)
            and len(point) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        ):
            curve.append((int(point[0]), float(point[1])))
    return curve
