"""Catalog bases downloaded from a loopback Hugging Face Hub (tests/hub_server.py) through
the real huggingface_hub client: progress, resume, disk check, gated licences, and the
catalog name working afterwards. Nothing leaves this machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.models import hub
from cognitivetwin_core.models.loader import BaseModelUnavailableError, base_model_dir, load_base_model

REPO = "meta-llama/Llama-3.2-1B-Instruct"  # the catalog's llama-3.2-1b


@pytest.fixture()
def repo_files(tiny_model_dir) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir() if p.is_file()}
    # What a real repo also holds and a base does not need: never fetched.
    files["pytorch_model.bin"] = b"not wanted"
    files["original/consolidated.00.pth"] = b"not wanted either"
    files["README.md"] = b"# model card"
    return files


@pytest.fixture()
def hub_env(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return cache


def _serve(files, **repo_options) -> FakeHub:
    return FakeHub({REPO: FakeRepo(dict(files), **repo_options)})


def test_nothing_is_downloaded_unless_asked(repo_files, hub_env, monkeypatch):
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(BaseModelUnavailableError, match="cognitivetwin model download llama-3.2-1b"):
            load_base_model("llama-3.2-1b")
        assert server.requests == []


def test_download_then_the_catalog_name_loads(repo_files, hub_env, monkeypatch):
    seen = []
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        folder = hub.download(REPO, progress=lambda done, total: seen.append((done, total)))
        wanted = sum(len(v) for k, v in repo_files.items() if k.endswith((".json", ".safetensors", ".jinja")))
        assert seen and seen[-1][0] == seen[-1][1] >= wanted - len(repo_files.get("chat_template.jinja", b""))
        assert all(b <= t for b, t in seen)
        got = {p.name for p in folder.iterdir()}
        assert "model.safetensors" in got and "config.json" in got and "tokenizer.json" in got
        assert not {"pytorch_model.bin", "README.md", "original"} & got
        assert (folder / "model.safetensors").read_bytes() == repo_files["model.safetensors"]
        downloaded_requests = len(server.requests)

        # Offline from here: the name resolves to the downloaded folder, no request made.
        assert Path(base_model_dir("llama-3.2-1b")) == folder
        model, tokenizer = load_base_model("llama-3.2-1b")
        assert model.config.hidden_size == 64 and tokenizer is not None
        from cognitivetwin_core.models.catalog import get_spec

        assert get_spec("llama-3.2-1b").local_available
        assert len(server.requests) == downloaded_requests

        # A second download fetches nothing and still reports 100%.
        seen.clear()
        hub.download(REPO, progress=lambda done, total: seen.append((done, total)))
        assert seen[-1][0] == seen[-1][1] > 0
        assert not [r for r in server.requests[downloaded_requests:] if r[0] == "GET" and "/resolve/" in r[1]]


def test_an_interrupted_download_resumes_without_fetching_finished_files(repo_files, hub_env, monkeypatch):
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.fail["model.safetensors"] = 503
        with pytest.raises(hub.HubDownloadError, match="503"):
            hub.download(REPO, max_workers=1)
        # Partial: not taken for a model.
        with pytest.raises(BaseModelUnavailableError, match="did not finish"):
            base_model_dir("llama-3.2-1b")
        assert len(server.file_gets("/config.json")) == 1

        del server.fail["model.safetensors"]
        folder = hub.download(REPO)
        assert (folder / "model.safetensors").read_bytes() == repo_files["model.safetensors"]
        assert len(server.file_gets("/config.json")) == 1  # kept from the first try
        assert Path(base_model_dir("llama-3.2-1b")) == folder


def test_a_dropped_connection_is_resumed_with_a_range_request(repo_files, hub_env, monkeypatch):
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        from huggingface_hub import constants

        # huggingface_hub writes whole 10 MiB chunks: the cut falls after the first one.
        chunk = constants.DOWNLOAD_CHUNK_SIZE
        assert len(repo_files["model.safetensors"]) > chunk + 1000
        server.cut_once["model.safetensors"] = chunk + 1000
        folder = hub.download(REPO)
        ranges = [r[2] for r in server.file_gets("/model.safetensors")]
        assert ranges == [None, f"bytes={chunk}-"]
        assert (folder / "model.safetensors").read_bytes() == repo_files["model.safetensors"]


def test_the_disk_is_checked_before_anything_is_fetched(repo_files, hub_env, monkeypatch):
    real = shutil.disk_usage

    def tiny_disk(path):
        return real(path)._replace(free=1024)

    monkeypatch.setattr(hub.shutil, "disk_usage", tiny_disk)
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(InputError, match=r"needs .* GiB but the disk .* free"):
            hub.download(REPO)
        assert not [r for r in server.requests if r[0] == "GET" and "/resolve/" in r[1]]


def test_a_gated_base_says_to_accept_the_licence(repo_files, hub_env, monkeypatch):
    with _serve(repo_files, gated=True, accepted_tokens={"hf_accepted"}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(hub.HubDownloadError) as no_token:
            hub.download(REPO)
        assert "accept its licence" in str(no_token.value) and "token" in str(no_token.value)
        with pytest.raises(hub.HubDownloadError, match="accept its licence") as refused:
            hub.download(REPO, token="hf_not_accepted")
        assert "hf_not_accepted" not in str(refused.value)
        folder = hub.download(REPO, token="hf_accepted")
        assert (folder / "config.json").is_file()
        assert server.file_gets("/model.safetensors")[-1][3]  # fetched with the token


def test_an_unknown_repo_and_an_unreachable_hub_are_one_sentence(hub_env, monkeypatch):
    with FakeHub({}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(hub.HubDownloadError, match="has no model"):
            hub.download("nobody/nothing")
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.HubDownloadError, match="Could not reach the Hugging Face Hub"):
        hub.download(REPO)


def test_cli_model_download_prints_progress(repo_files, hub_env, monkeypatch, capsys):
    from cognitivetwin_core.cli import main

    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_from_env")
        assert main(["model", "download", "llama-3.2-1b"]) == 0
        assert all(r[3] for r in server.requests)  # HF_TOKEN was sent
    out = capsys.readouterr().out
    assert "100%" in out and "now works wherever a base model is asked for" in out
    assert "hf_from_env" not in out


def test_hugging_face_token_prefers_the_environment(monkeypatch):
    from cognitivetwin_core.connections import secrets

    monkeypatch.setenv("HF_TOKEN", "hf_env_value")
    assert secrets.huggingface_token() == "hf_env_value"
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(secrets, "get_secret", lambda name: "hf_kept" if name == secrets.HUGGINGFACE_TOKEN else None)
    assert secrets.huggingface_token() == "hf_kept"


def test_a_cancelled_download_stops_with_the_files_so_far_kept(repo_files, hub_env, monkeypatch):
    from cognitivetwin_core.cancellation import Cancellation
    from cognitivetwin_core.errors import CancelledError

    cancellation = Cancellation()
    cancellation.cancel()
    with _serve(repo_files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(CancelledError, match="kept for next time"):
            hub.download(REPO, cancellation=cancellation, max_workers=1)
        folder = hub.download(REPO)  # a later run finishes the download
        assert (folder / "model.safetensors").read_bytes() == repo_files["model.safetensors"]
