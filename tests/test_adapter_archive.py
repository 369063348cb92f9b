"""Safe extraction of downloaded adapter archives and the PEFT folder check."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from pathlib import Path

import pytest
import zstandard

from cognitivetwin_core.phase1.adapter_archive import (
    AdapterArchiveError,
    extract_adapter_archive,
    public_base_id,
    verify_peft_adapter_dir,
)


def safetensors_bytes(names=("base_model.model.layers.0.self_attn.q_proj.lora_A.weight",)) -> bytes:
    header = {name: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, name in enumerate(names)}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * 4 * len(names)


CONFIG = {
    "peft_type": "LORA",
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj"],
    "task_type": "CAUSAL_LM",
    "base_model_name_or_path": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "corda_config": None,
    "a_key_from_the_future": 1,
}


def make_archive(path: Path, entries: list[tuple], *, compress: bool = True) -> Path:
    """entries: (name, bytes) for files, or (TarInfo,) for anything else."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for entry in entries:
            if len(entry) == 1:
                tar.addfile(entry[0])
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    data = raw.getvalue()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return path


def good_entries(prefix: str = "") -> list[tuple]:
    return [
        (f"{prefix}adapter_config.json", json.dumps(CONFIG).encode()),
        (f"{prefix}adapter_model.safetensors", safetensors_bytes()),
    ]


def test_good_archive_is_extracted_and_config_made_loadable(tmp_path):
    archive = make_archive(tmp_path / "a.tar.zst", good_entries() + [("tokenizer.json", b"{}")])
    changes = {}
    folder = extract_adapter_archive(archive, tmp_path / "out", config_changes=changes)
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
    ]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "a_key_from_the_future" not in config and config["r"] == 8
    assert changes["base_model_rewritten_from"].endswith("-Reference")
    assert "a_key_from_the_future" in changes["dropped_config_keys"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_single_nested_folder_is_lifted(tmp_path):
    archive = make_archive(tmp_path / "a.tar.zst", good_entries("model-name/"))
    folder = extract_adapter_archive(archive, tmp_path / "out")
    assert (folder / "adapter_config.json").is_file() and not (folder / "model-name").exists()


def test_existing_target_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "out"
    extract_adapter_archive(make_archive(tmp_path / "a.tar.zst", good_entries()), target)
    (target / "marker").write_text("old")
    bad = make_archive(tmp_path / "b.tar.zst", [("adapter_config.json", b"{}")])
    with pytest.raises(AdapterArchiveError):
        extract_adapter_archive(bad, target)
    assert (target / "marker").read_text() == "old"  # the previous adapter survived the bad one


def _info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "entry, words",
    [
        (("../../escape.txt", b"x"), "climbs out"),
        (("sub/../../escape.txt", b"x"), "climbs out"),
        (("/etc/cron.d/evil", b"x"), "absolute"),
        (("C:\\evil.txt", b"x"), "absolute"),
        ((_info("link", tarfile.SYMTYPE, "/etc/passwd"),), "link"),
        ((_info("hard", tarfile.LNKTYPE, "adapter_config.json"),), "link"),
        ((_info("dev", tarfile.CHRTYPE),), "device"),
        ((_info("fifo", tarfile.FIFOTYPE),), "device"),
    ],
)
def test_unsafe_entries_are_refused_before_anything_is_written(tmp_path, entry, words):
    archive = make_archive(tmp_path / "a.tar.zst", [entry] + good_entries())
    with pytest.raises(AdapterArchiveError, match=words):
        extract_adapter_archive(archive, tmp_path / "dest" / "out")
    assert not (tmp_path / "dest" / "out").exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "dest" / "escape.txt").exists()
    assert [p.name for p in (tmp_path / "dest").iterdir()] == []


def test_size_cap(tmp_path):
    archive = make_archive(tmp_path / "a.tar.zst", good_entries() + [("big.bin", b"\0" * 10_000)])
    with pytest.raises(AdapterArchiveError, match="MiB"):
        extract_adapter_archive(archive, tmp_path / "out", max_total_bytes=5_000)


def test_member_count_cap(tmp_path):
    archive = make_archive(tmp_path / "a.tar.zst", good_entries() + [(f"f{i}", b"") for i in range(20)])
    with pytest.raises(AdapterArchiveError, match="entries"):
        extract_adapter_archive(archive, tmp_path / "out", max_members=10)


def test_truncated_and_garbage_archives(tmp_path):
    whole = make_archive(tmp_path / "a.tar.zst", good_entries()).read_bytes()
    (tmp_path / "cut.tar.zst").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AdapterArchiveError, match="damaged or incomplete"):
        extract_adapter_archive(tmp_path / "cut.tar.zst", tmp_path / "out")
    (tmp_path / "junk.tar.zst").write_bytes(b"<html>not an archive</html>")
    with pytest.raises(AdapterArchiveError, match="damaged or incomplete"):
        extract_adapter_archive(tmp_path / "junk.tar.zst", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_plain_tar_is_accepted(tmp_path):
    archive = make_archive(tmp_path / "a.tar", good_entries(), compress=False)
    assert (extract_adapter_archive(archive, tmp_path / "out") / "adapter_config.json").is_file()


@pytest.mark.parametrize(
    "files, words",
    [
        ({"adapter_model.safetensors": safetensors_bytes()}, "no adapter_config.json"),
        ({"adapter_config.json": json.dumps(CONFIG).encode()}, "no adapter_model.safetensors"),
        ({"adapter_config.json": b"{not json", "adapter_model.safetensors": safetensors_bytes()}, "not valid JSON"),
        (
            {
                "adapter_config.json": json.dumps({**CONFIG, "peft_type": "IA3"}).encode(),
                "adapter_model.safetensors": safetensors_bytes(),
            },
            "LoRA",
        ),
        ({"adapter_config.json": json.dumps(CONFIG).encode(), "adapter_model.safetensors": b"garbage"}, "safetensors"),
        (
            {
                "adapter_config.json": json.dumps(CONFIG).encode(),
                "adapter_model.safetensors": safetensors_bytes(("model.embed_tokens.weight",)),
            },
            "no LoRA weights",
        ),
    ],
)
def test_verify_peft_adapter_dir(tmp_path, files, words):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(AdapterArchiveError, match=words):
        verify_peft_adapter_dir(tmp_path)


def test_public_base_id():
    assert public_base_id("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference") == "meta-llama/Llama-3.1-8B-Instruct"
    assert public_base_id("org/Some-Model-Reference") == "org/Some-Model"
    assert public_base_id("Qwen/Qwen3-4B") == "Qwen/Qwen3-4B"
