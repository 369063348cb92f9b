"""The Together job manager, with the real `together` SDK against the loopback fake."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.adapter_archive import AdapterArchiveError
from cognitivetwin_core.phase1.jobs import Phase1Settings
from cognitivetwin_core.phase1.together_errors import TogetherServiceError
from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

CONVERSATIONS = [
    [
        {"role": "user", "content": f"Question number {i}: how do I sort a list?"},
        {"role": "assistant", "content": f"Use sorted(items) number {i}; it returns a new list."},
    ]
    for i in range(6)
]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("together-adapter"))


@pytest.fixture()
def fake(adapter_dir):
    with FakeTogether(adapter_dir=adapter_dir) as server:
        yield server


@pytest.fixture()
def data_file(tmp_path) -> Path:
    path = tmp_path / "phase1.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS), encoding="utf-8")
    return path


@pytest.fixture()
def workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


def manager(fake, workspace, **options) -> TogetherJobManager:
    options.setdefault("sleep", lambda seconds: None)
    options.setdefault("poll_interval", 0.0)
    return TogetherJobManager(
        workspace, api_key=options.pop("api_key", fake.api_key), base_url=fake.base_url, **options
    )


SETTINGS = Phase1Settings(
    base_model="llama-3.2-3b", epochs=2, lora_r=8, lora_alpha=16, target_modules=("q_proj", "v_proj"), suffix="my-twin"
)


def test_whole_lifecycle_upload_estimate_create_monitor_download(fake, workspace, data_file, tiny_model_dir):
    jobs = manager(fake, workspace)
    uploads = []
    plan = jobs.dry_run(data_file, SETTINGS, progress=lambda done, total: uploads.append((done, total)))
    assert plan.data.examples == 6
    assert uploads[-1][0] == uploads[-1][1] == data_file.stat().st_size
    assert plan.estimated_price and plan.estimated_price > 0 and plan.allowed_to_proceed
    assert plan.limits["lora_training"]["max_rank"] == 64
    assert any("estimated price" in line for line in plan.summary_lines())

    job_id = jobs.launch(plan)
    assert job_id.startswith("ft-")
    body = fake.create_bodies[-1]
    # LoRA settings reach the wire only because lora=True is passed (reference pitfall 3).
    assert body["training_type"] == {
        "type": "Lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "lora_trainable_modules": "q_proj,v_proj",
    }
    assert body["model"] == "meta-llama/Llama-3.2-3B-Instruct" and body["suffix"] == "my-twin"
    assert body["n_epochs"] == 2 and body["training_method"]["train_on_inputs"] is False
    assert fake.count("GET", "/models/limits") == 1  # the dry run's limits were reused by create
    record = workspace.get_phase1_job(job_id)
    assert record["training_file"] == plan.training_file_id and record["estimate"]["price"] == plan.estimated_price
    assert not [r for r in workspace.phase1_jobs() if r["job_id"].startswith("intent-")]

    updates = []
    final = jobs.wait(job_id, on_update=updates.append)
    assert final.status == "completed" and not final.failed
    seen = [e for u in updates for e in u.new_events]
    server_events = fake.jobs[job_id].events
    assert [e["type"] for e in seen] == [e["type"] for e in server_events]  # each event once, in order
    assert any(u.step and u.total_steps == 12 for u in updates)
    statuses = [u.status for u in updates]
    assert statuses.index("running") < statuses.index("completed")

    folder = jobs.download(job_id)
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "meta-llama/Llama-3.1-8B-Instruct"  # -Reference rewritten
    assert "some_future_peft_option" not in config
    registered = workspace.get_adapter(f"together-{job_id}")
    assert Path(registered["path"]) == folder
    assert registered["lineage"]["job_id"] == job_id and registered["lineage"]["data_sha256"] == plan.data.sha256
    assert json.loads((folder / "lineage.json").read_text())["backend"] == "together"

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loaded = PeftModel.from_pretrained(base, folder)
    assert any("lora_A" in name for name, _ in loaded.named_parameters())


def test_restart_resumes_monitoring_and_download(fake, tmp_path, data_file):
    with Workspace.open(tmp_path / "ws") as ws:
        jobs = manager(fake, ws)
        job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
        jobs.poll(job_id)
        del jobs
    # A new process: new workspace object, new manager, nothing kept in memory.
    with Workspace.open(tmp_path / "ws") as ws:
        jobs = manager(fake, ws)
        assert jobs.unfinished_jobs() == [job_id]
        results = jobs.resume_monitoring()
        assert results[job_id].status == "completed"
        assert jobs.unfinished_jobs() == []
        folder = jobs.download(job_id)
        assert (folder / "adapter_model.safetensors").is_file()
        events = ws.get_phase1_job(job_id)["events"]
        assert len(events) == len(fake.jobs[job_id].events)


def test_crash_between_create_and_store_is_reconciled(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    plan = jobs.dry_run(data_file, SETTINGS)
    # The process wrote its intent, Together created the job, then the app died.
    intent = {
        "backend": "together",
        "status": "creating",
        "base_model": "llama-3.2-3b",
        "model_id": plan.model_id,
        "suffix": "my-twin",
        "training_file": plan.training_file_id,
        "intent_time": 0.0,
    }
    workspace.upsert_phase1_job("intent-crashed", intent)
    created = jobs.client.fine_tuning.create(
        training_file=plan.training_file_id, model=plan.model_id, lora=True, suffix="my-twin", train_on_inputs=False
    )
    workspace.upsert_phase1_job("intent-nothing", {**intent, "training_file": "file-never-used"})
    jobs2 = manager(fake, workspace)
    assert workspace.get_phase1_job("intent-crashed") is None
    assert workspace.get_phase1_job(created.id)["status"] == "pending"
    assert workspace.get_phase1_job("intent-nothing")["status"] == "create_failed"
    assert jobs2.unfinished_jobs() == [created.id]


def test_lost_create_answer_adopts_the_job_instead_of_paying_twice(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    plan = jobs.dry_run(data_file, SETTINGS)
    fake.create_then_fail_times = 1  # the job is created, the answer is a 500
    job_id = jobs.launch(plan)
    assert list(fake.jobs) == [job_id]  # no second job
    assert jobs.duplicates(job_id) == []


def test_duplicate_from_sdk_retry_is_reported(fake, workspace, data_file):
    jobs = manager(fake, workspace, create_retries=2)  # what a plain SDK client would do
    plan = jobs.dry_run(data_file, SETTINGS)
    fake.create_then_fail_times = 1
    job_id = jobs.launch(plan)
    assert len(fake.jobs) == 2
    (other,) = [j for j in fake.jobs if j != job_id]
    assert jobs.duplicates(job_id) == [other]
    assert workspace.get_phase1_job(job_id)["duplicates"] == [other]


def test_bad_key_is_a_plain_message_without_the_key(fake, workspace, data_file, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "tgp_this_is_a_wrong_key_0123456789abcdef"
    jobs = manager(fake, workspace, api_key=wrong)
    with pytest.raises(TogetherServiceError) as info:
        jobs.dry_run(data_file, SETTINGS)
    assert info.value.kind == "auth" and "API key" in str(info.value)
    assert wrong not in str(info.value) and wrong not in caplog.text


def test_403_is_an_auth_error(fake, workspace, data_file):
    fake.fail("GET", "/models/limits", 403, headers={"x-should-retry": "false"})
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, SETTINGS)
    assert info.value.kind == "auth" and info.value.status_code == 403


def test_rate_limit_is_retried_then_succeeds(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    fake.fail("GET", rf"/v1/fine-tunes/{job_id}$", 429, headers={"retry-after-ms": "10"})
    update = jobs.poll(job_id)
    assert update.status == "queued"  # the 429 was retried by the SDK and the poll went through
    assert fake.count("GET", rf"/v1/fine-tunes/{job_id}$") == 2


def test_rate_limit_that_persists_is_a_plain_message(fake, workspace, data_file):
    fake.fail("GET", "/models/limits", 429, times=3, headers={"retry-after-ms": "5"})
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, SETTINGS)
    assert info.value.kind == "rate_limit" and "wait" in str(info.value)


def test_server_error(fake, workspace, data_file):
    fake.fail("POST", "/estimate-price", 500, headers={"x-should-retry": "false"})
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, SETTINGS)
    assert info.value.kind == "server" and "try again" in str(info.value)


def test_wait_rides_out_transient_server_errors(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    fake.fail("GET", rf"/v1/fine-tunes/{job_id}$", 503, times=2, headers={"x-should-retry": "false"})
    assert jobs.wait(job_id).status == "completed"


def test_slow_response_times_out_with_a_plain_message(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    slow = manager(fake, workspace, timeout=0.3, max_retries=0)
    fake.fail("GET", rf"/v1/fine-tunes/{job_id}$", 0, delay=1.0)
    with pytest.raises(TogetherServiceError) as info:
        slow.poll(job_id)
    assert info.value.kind == "timeout" and "in time" in str(info.value)


def test_job_ending_in_user_error_shows_last_events(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    fake.next_job_outcome = "user_error"
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    final = jobs.wait(job_id)
    assert final.status == "user_error" and final.failed
    assert "Data validation failed" in final.message and "fix the data" in final.message
    assert workspace.get_phase1_job(job_id)["error"] == final.message
    with pytest.raises(InputError, match="not completed"):
        jobs.download(job_id)


def test_unknown_model(fake, workspace, data_file):
    fake.known_models.discard("Qwen/Qwen3-4B")
    settings = Phase1Settings(base_model="qwen3-4b", epochs=1)
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, settings)
    assert info.value.kind == "unknown_model" and "Qwen/Qwen3-4B" in str(info.value)


def test_local_only_model_is_refused_before_any_request(fake, workspace, data_file):
    with pytest.raises(InputError, match="--local"):
        manager(fake, workspace).dry_run(data_file, Phase1Settings(base_model="smollm2-135m"))
    assert fake.requests == []


def test_settings_outside_model_limits(fake, workspace, data_file):
    settings = Phase1Settings(base_model="llama-3.2-1b", lora_r=128, epochs=1)
    with pytest.raises(InputError, match="rank 128"):
        manager(fake, workspace).dry_run(data_file, settings)


def test_file_rejected_by_together(fake, workspace, data_file):
    fake.reject_uploads = "Line 2: messages must alternate between user and assistant"
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, SETTINGS)
    assert info.value.kind == "file_rejected" and "alternate" in str(info.value)


def test_bad_local_file_names_the_line(fake, workspace, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
        '{"messages": [{"role": "robot", "content": "x"}]}\n'
    )
    with pytest.raises(InputError, match="line 2"):
        manager(fake, workspace).dry_run(bad, SETTINGS)


def test_no_credit(fake, workspace, data_file):
    fake.fail(
        "POST",
        "/estimate-price",
        402,
        body={"error": {"message": "Insufficient balance", "type": "billing", "param": None, "code": None}},
        headers={"x-should-retry": "false"},
    )
    with pytest.raises(TogetherServiceError) as info:
        manager(fake, workspace).dry_run(data_file, SETTINGS)
    assert info.value.kind == "credit" and "credit" in str(info.value)


def test_estimate_over_the_account_limit_refuses_to_launch(fake, workspace, data_file):
    fake.user_limit = 0.0
    jobs = manager(fake, workspace)
    plan = jobs.dry_run(data_file, SETTINGS)
    assert not plan.allowed_to_proceed and plan.warnings
    with pytest.raises(TogetherServiceError) as info:
        jobs.launch(plan)
    assert info.value.kind == "credit"
    assert fake.create_bodies == []


def test_refused_create_leaves_no_record_and_a_lost_one_is_settled_later(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    plan = jobs.dry_run(data_file, SETTINGS)
    fake.fail("POST", r"/v1/fine-tunes$", 400, headers={"x-should-retry": "false"})
    with pytest.raises(TogetherServiceError, match="injected 400"):
        jobs.launch(plan)
    assert workspace.phase1_jobs() == []
    # Every attempt fails with a 500 and Together has no job: the intent stays "creating"...
    fake.fail("POST", r"/v1/fine-tunes$", 500, times=4, headers={"x-should-retry": "false"})
    with pytest.raises(TogetherServiceError) as info:
        jobs.launch(plan)
    assert info.value.kind == "server" and fake.jobs == {}
    (intent,) = workspace.phase1_jobs()
    assert intent["job_id"].startswith("intent-") and intent["status"] == "creating"
    # ...until the next manager finds nothing and marks it failed.
    manager(fake, workspace)
    assert workspace.get_phase1_job(intent["job_id"])["status"] == "create_failed"


def test_cancel(fake, workspace, data_file):
    jobs = manager(fake, workspace)
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    assert jobs.cancel(job_id).status == "cancel_requested"
    final = jobs.wait(job_id)
    assert final.status == "cancelled" and final.failed
    with pytest.raises(InputError, match="nothing to cancel"):
        jobs.cancel(job_id)


@pytest.mark.parametrize("mode", ["traversal", "absolute", "symlink", "truncated"])
def test_unsafe_or_damaged_archive_is_refused_and_leaves_nothing(fake, workspace, data_file, mode):
    jobs = manager(fake, workspace)
    job_id = jobs.launch(jobs.dry_run(data_file, SETTINGS))
    jobs.wait(job_id)
    fake.archive_mode = mode
    with pytest.raises(AdapterArchiveError):
        jobs.download(job_id)
    adapters = Path(workspace.adapters_dir)
    assert not (adapters / f"together-{job_id}").exists()
    assert [p.name for p in adapters.iterdir() if p.name != ".downloads"] == []
    assert list((adapters / ".downloads").iterdir()) == []
    assert workspace.adapters() == []
    assert not (adapters.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_base_url_with_v1_is_fixed(fake, workspace, data_file):
    jobs = TogetherJobManager(workspace, api_key=fake.api_key, base_url=fake.base_url + "/v1", sleep=lambda s: None)
    assert jobs.dry_run(data_file, SETTINGS).training_file_id.startswith("file-")


def test_base_url_from_environment(fake, workspace, data_file, monkeypatch):
    monkeypatch.setenv("TOGETHER_BASE_URL", fake.base_url)
    jobs = TogetherJobManager(workspace, api_key=fake.api_key, sleep=lambda s: None)
    assert jobs.base_url == fake.base_url
    assert jobs.dry_run(data_file, SETTINGS).training_file_id.startswith("file-")
