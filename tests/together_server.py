"""A loopback fake of the Together fine-tuning API, following docs/together.md.

The real `together` SDK talks to it over HTTP on 127.0.0.1. It implements the upload flow
(POST /v1/files -> 302 + X-Together-File-Id, unauthenticated PUT to /storage/<id> -> 200,
POST /v1/files/<id>/preprocess), files retrieve/list, model limits, estimate-price, create,
retrieve, list, cancel, events, checkpoints and the `.tar.zst` download (with Range/206).
Preference (DPO) files are validated in Together's format, and a create with `from_checkpoint`
continues a completed job (its model and LoRA settings); `training_method` must match the file.

Jobs advance one stage each time they are retrieved, so a test controls time by polling.
Fault injection:
- `fail(method, path_regex, status, body=None, times=1, headers=None, delay=0.0)`: the next
  `times` matching requests get that answer (status 0 = only the delay, then the normal answer).
- `create_then_fail_times = N`: the next N job creations really create the job and then
  answer 500, as a server that times out after committing (the SDK retry duplicates it).
- `next_job_outcome`: "completed" (default), "user_error" or "error" for the next job.
- `archive_mode`: "ok", "traversal" (an entry `../evil.txt`), "absolute", "symlink",
  "truncated" (the archive cut in half).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

KNOWN_MODELS = (
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "google/gemma-3-4b-it",
    "Qwen/Qwen3-4B",
)
PRICE_PER_MILLION_TOKENS = 3.0
USER_ID = "user_fake"

# Stage list of a normal job; each retrieve advances one entry.
_NORMAL_STAGES = (
    ("pending", ["job_pending"]),
    ("queued", []),
    (
        "running",
        [
            "job_start",
            "model_downloading",
            "model_download_complete",
            "training_data_downloading",
            "training_data_download_complete",
        ],
    ),
    ("running", ["training_start"]),
    ("running", ["epoch_complete", "checkpoint_save"]),
    ("running", ["epoch_complete", "training_complete"]),
    ("compressing", ["model_compressing", "model_compression_complete"]),
    ("uploading", ["model_uploading", "model_upload_complete"]),
    ("completed", ["job_complete"]),
)
TERMINAL = ("completed", "cancelled", "error", "user_error")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    body: object
    times: int
    headers: dict
    delay: float


@dataclass
class FakeJob:
    id: str
    request: dict
    outcome: str
    created: float
    stage: int = 0
    status: str = "pending"
    events: list = field(default_factory=list)
    total_steps: int = 12
    step: int = 0


def make_tiny_lora_adapter(
    base_dir: Path, out_dir: Path, base_id: str = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
) -> Path:
    """A real PEFT LoRA adapter (q/v, r=4) of the tiny test model, saved as Together ships it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # non-zero so loading it visibly changes the model
            torch.nn.init.normal_(param, std=0.02)
    peft_model.save_pretrained(out_dir)
    config_path = Path(out_dir) / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_id
    config["some_future_peft_option"] = {"enabled": False}  # newer-PEFT keys appear in real archives
    config_path.write_text(json.dumps(config))
    return Path(out_dir)


def build_adapter_archive(adapter_dir: Path, mode: str = "ok") -> bytes:
    """A zstd-compressed tar of the adapter folder's files at the archive root."""
    import zstandard

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(Path(adapter_dir).iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
        evil = b"owned\n"
        if mode in ("traversal", "absolute"):
            info = tarfile.TarInfo("../evil.txt" if mode == "traversal" else "/tmp/evil.txt")
            info.size = len(evil)
            tar.addfile(info, io.BytesIO(evil))
        if mode == "symlink":
            info = tarfile.TarInfo("link_to_passwd")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    data = zstandard.ZstdCompressor(level=3).compress(raw.getvalue())
    if mode == "truncated":
        data = data[: len(data) // 2]
    return data


class FakeTogether:
    def __init__(self, *, api_key: str = "tgp_fake_key_for_tests_0123456789", adapter_dir: Path | None = None):
        self.api_key = api_key
        self.adapter_dir = adapter_dir
        self.files: dict[str, dict] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict]] = []
        self.create_bodies: list[dict] = []
        self.estimate_bodies: list[dict] = []
        self.create_then_fail_times = 0
        self.next_job_outcome = "completed"
        self.archive_mode = "ok"
        self.user_limit = 100.0
        self.known_models = set(KNOWN_MODELS)
        self.reject_uploads: str | None = None  # a reason: preprocess marks every file invalid
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeTogether:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # shutdown() waits up to one poll interval: the default 0.5 s was half a second a test
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-together",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- fault injection ---------------------------------------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        body=None,
        *,
        times: int = 1,
        headers: dict | None = None,
        delay: float = 0.0,
    ) -> None:
        if body is None and status:
            body = {"error": {"message": f"injected {status}", "type": "server_error", "param": None, "code": None}}
        with self._lock:
            self.faults.append(Fault(method.upper(), re.compile(path_regex), status, body, times, headers or {}, delay))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        return sum(1 for m, p, _ in self.requests if m == method and pattern.search(p))

    def checkpoint_job(self, name: str) -> FakeJob | None:
        """The job a `from_checkpoint` names: `ft-…`, its output model name, either with `:STEP`."""
        name = name.split(":")[0]
        with self._lock:
            for job in self.jobs.values():
                if name in (job.id, self.job_json(job, truncated=True)["model_output_name"]):
                    return job
        return None

    # -- job model ---------------------------------------------------------------
    def advance(self, job: FakeJob) -> None:
        """One tick of simulated time for `job`."""
        if job.status in TERMINAL:
            return
        if job.status == "cancel_requested":
            job.status = "cancelled"
            self._event(job, "job_stopped", "Job cancelled by user")
            return
        if job.outcome in ("user_error", "error") and job.stage >= 2:
            job.status = job.outcome
            message = (
                "Data validation failed: line 3 has no assistant message"
                if job.outcome == "user_error"
                else "Internal error: training worker lost"
            )
            self._event(job, "job_error", message, level="error")
            return
        job.stage = min(job.stage + 1, len(_NORMAL_STAGES) - 1)
        job.status, names = _NORMAL_STAGES[job.stage]
        for name in names:
            extra = {}
            if name == "training_start":
                extra = {"total_steps": job.total_steps, "param_count": 3_000_000_000, "token_count": 12345}
            if name == "epoch_complete":
                job.step = min(job.total_steps, job.step + job.total_steps // 2)
                extra = {"step": job.step}
            if name == "checkpoint_save":
                extra = {"step": job.step, "checkpoint_path": f"s3://fake/{job.id}/step-{job.step}"}
            self._event(job, name, name.replace("_", " ").capitalize(), **extra)

    def _event(self, job: FakeJob, type_: str, message: str, *, level: str = "info", **extra) -> None:
        job.events.append(
            {
                "object": "fine-tune-event",
                "created_at": iso(time.time()),
                "level": level,
                "message": message,
                "type": type_,
                **extra,
            }
        )

    def job_json(self, job: FakeJob, *, truncated: bool = False) -> dict:
        req = job.request
        training_type = req.get("training_type") or {"type": "Lora"}
        body = {
            "id": job.id,
            "status": job.status,
            "created_at": iso(job.created),
            "updated_at": iso(time.time()),
            "started_at": None,
            "user_id": USER_ID,
            "model": req.get("model"),
            "training_file": req.get("training_file"),
            "validation_file": req.get("validation_file") or "",
            "suffix": req.get("suffix"),
            "model_output_name": f"fakeuser/{(req.get('model') or 'm').split('/')[-1]}-{req.get('suffix') or 'ft'}-{job.id[3:11]}",
            "adapter_output_name": None,
            "n_epochs": req.get("n_epochs"),
            "n_checkpoints": req.get("n_checkpoints"),
            "learning_rate": req.get("learning_rate"),
            "training_type": training_type,
            "training_method": req.get("training_method"),
            "epochs_completed": job.step * (req.get("n_epochs") or 1) // job.total_steps,
            "token_count": 12345,
            "total_price": 0,
            "queue_depth": 0,
            "progress": {
                "estimate_available": job.status == "running",
                "seconds_remaining": 60 if job.status == "running" else 0,
            },
        }
        if isinstance(req.get("batch_size"), int):
            body["batch_size"] = req["batch_size"]
        if not truncated:
            body["events"] = job.events
        return body


def _error(message: str, type_: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


def _validate_preference_line(record: dict, number: int) -> str:
    """Together's preference (DPO) format: `input.messages`, and one assistant message each in
    `preferred_output` and `non_preferred_output`. An empty string when the line is valid."""
    messages = (record.get("input") or {}).get("messages") if isinstance(record.get("input"), dict) else None
    if not isinstance(messages, list) or not messages:
        return f"Line {number} has no 'input.messages' list"
    for key in ("preferred_output", "non_preferred_output"):
        output = record.get(key)
        if (
            not isinstance(output, list)
            or len(output) != 1
            or not isinstance(output[0], dict)
            or output[0].get("role") != "assistant"
            or not isinstance(output[0].get("content"), str)
        ):
            return f"Line {number}: '{key}' must hold exactly one assistant message"
    return ""


def _dataset_format(content: bytes) -> str:
    """CONVERSATION or PREFERENCE, from the keys of the first line."""
    for line in content.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                break
            return "PREFERENCE" if isinstance(record, dict) and "preferred_output" in record else "CONVERSATION"
    return "CONVERSATION"


def _validate_chat_jsonl(content: bytes) -> tuple[bool, str, int]:
    lines = [line for line in content.decode("utf-8", errors="replace").splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            return False, f"Line {number} is not valid JSON", len(lines)
        if isinstance(record, dict) and "preferred_output" in record:
            problem = _validate_preference_line(record, number)
            if problem:
                return False, problem, len(lines)
            continue
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            return False, f"Line {number} has no 'messages' list", len(lines)
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
                return False, f"Line {number} has a message with an invalid role", len(lines)
            if not isinstance(message.get("content"), str):
                return False, f"Line {number} has a message without text content", len(lines)
        if not any(m.get("role") == "assistant" for m in messages):
            return False, f"Line {number} has no assistant message", len(lines)
    return bool(lines), "" if lines else "The file is empty", len(lines)


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeTogether
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms a response on loopback).
    disable_nagle_algorithm = True

    def log_message(self, *args):  # keep pytest output clean
        pass

    # -- plumbing ----------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body=None,
        *,
        headers: dict | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if body is not None or raw is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self) -> None:
        fake = self.server_fake
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        body = self._body()
        fake.requests.append((self.command, self.path, dict(self.headers)))
        fault = fake.take_fault(self.command, path)
        if fault:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                self._send(fault.status, fault.body, headers=fault.headers)
                return
        if path.startswith("/storage/"):
            return self._storage_put(path, body)
        if path.startswith("/v1/") and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return self._send(401, _error("Invalid API key provided", "invalid_api_key"))
        route = f"{self.command} {path}"
        for pattern, handler in _ROUTES:
            match = re.fullmatch(pattern, route)
            if match:
                return handler(self, query, body, *match.groups())
        self._send(404, _error(f"No route for {route}"))

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    # -- files -------------------------------------------------------------------
    def _file_json(self, record: dict, *, with_report: bool = True) -> dict:
        out = {k: record[k] for k in ("id", "object", "created_at", "filename", "bytes", "purpose", "FileType")}
        out["processing_status"] = record["processing_status"]
        if with_report:
            out["validation_report"] = record["validation_report"]
        return out

    def files_create(self, query, body):
        fake = self.server_fake
        text = body.decode("utf-8", errors="replace")
        fields = dict(re.findall(r'name="([^"]+)"\r\n\r\n([^\r]*)\r\n', text))
        if fields.get("purpose") not in ("fine-tune", "calibration", "eval", "batch-api"):
            return self._send(400, _error("Invalid purpose"))
        file_id = f"file-{uuid.uuid4()}"
        with fake._lock:
            fake.files[file_id] = {
                "id": file_id,
                "object": "file",
                "created_at": int(time.time()),
                "filename": fields.get("file_name", "upload.jsonl"),
                "bytes": 0,
                "purpose": fields["purpose"],
                "FileType": fields.get("file_type", "jsonl"),
                "checksum": fields.get("checksum"),
                "content": None,
                "processing_status": "PENDING",
                "validation_report": None,
            }
        self._send(302, None, headers={"Location": f"{fake.base_url}/storage/{file_id}", "X-Together-File-Id": file_id})

    def _storage_put(self, path, body):
        fake = self.server_fake
        file_id = path.rsplit("/", 1)[-1]
        record = fake.files.get(file_id)
        if self.command != "PUT" or record is None:
            return self._send(404, None)
        if record["checksum"] and hashlib.sha256(body).hexdigest() != record["checksum"]:
            return self._send(400, None)
        record["content"], record["bytes"] = body, len(body)
        self._send(200, None)

    def files_preprocess(self, query, body, file_id):
        record = self.server_fake.files.get(file_id)
        if record is None or record["content"] is None:
            return self._send(404, _error(f"File {file_id} not found"))
        valid, error, lines = _validate_chat_jsonl(record["content"])
        if self.server_fake.reject_uploads:
            valid, error = False, self.server_fake.reject_uploads
        record["processing_status"] = "COMPLETED" if valid else "INVALID_FORMAT"
        record["validation_report"] = {
            "valid": valid,
            "dataset_format": _dataset_format(record["content"]),
            "nlines": lines,
            "file_id": file_id,
            **({} if valid else {"error": error, "error_type": "INVALID_FORMAT"}),
        }
        self._send(200, self._file_json(record))

    def files_retrieve(self, query, body, file_id):
        record = self.server_fake.files.get(file_id)
        if record is None:
            return self._send(404, _error(f"File {file_id} not found"))
        self._send(200, self._file_json(record))

    def files_list(self, query, body):
        self._send(200, {"data": [self._file_json(r) for r in self.server_fake.files.values()]})

    # -- fine-tunes --------------------------------------------------------------
    def limits(self, query, body):
        model = (query.get("model_name") or [""])[0]
        parent = self.server_fake.checkpoint_job(model)
        if parent is not None:  # the SDK asks by the from_checkpoint job id or output name
            model = parent.request.get("model") or model
        if model not in self.server_fake.known_models:
            return self._send(404, {"message": f"Model {model} is not supported for fine-tuning"})
        self._send(
            200,
            {
                "model_name": model,
                "max_num_epochs": 20,
                "max_num_evals": 100,
                "max_num_checkpoints": 10,
                "max_learning_rate": 1.0,
                "min_learning_rate": 1e-8,
                "min_max_seq_length": 512,
                "max_seq_length_sft": 131072,
                "max_seq_length_dpo": 65536,
                "default_gradient_accumulation_steps": 1,
                "supports_vision": False,
                "supports_tools": True,
                "supports_reasoning": False,
                "supports_full_training": True,
                "merge_output_lora": True,
                "lora_training": {
                    "default_rank": 8,
                    "max_rank": 64,
                    "max_batch_size": 128,
                    "max_batch_size_dpo": 64,
                    "min_batch_size": 8,
                    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                },
                "full_training": {"max_batch_size": 96, "max_batch_size_dpo": 48, "min_batch_size": 8},
            },
        )

    def estimate(self, query, body):
        fake = self.server_fake
        request = json.loads(body or b"{}")
        fake.estimate_bodies.append(request)
        record = fake.files.get(request.get("training_file"))
        if record is None:
            return self._send(404, _error("Training file not found"))
        if record["processing_status"] != "COMPLETED":
            return self._send(200, {"estimation_available": False, "unavailable_reason": "train_file_invalid"})
        tokens = max(1, len(record["content"]) // 4)
        epochs = request.get("n_epochs") or 1
        price = round(tokens * epochs * PRICE_PER_MILLION_TOKENS / 1e6 + 0.5, 4)
        self._send(
            200,
            {
                "estimation_available": True,
                "estimated_total_price": price,
                "allowed_to_proceed": price <= fake.user_limit,
                "user_limit": fake.user_limit,
                "estimated_train_token_count": tokens * epochs,
                "estimated_eval_token_count": 0,
            },
        )

    def create(self, query, body):
        fake = self.server_fake
        request = json.loads(body or b"{}")
        fake.create_bodies.append(request)
        if request.get("training_file") not in fake.files:
            return self._send(400, _error("training_file not found"))
        stored = dict(request)
        checkpoint = request.get("from_checkpoint")
        if checkpoint:
            if request.get("model"):
                return self._send(400, _error("Give either model or from_checkpoint, not both"))
            parent = fake.checkpoint_job(checkpoint)
            if parent is None or parent.status != "completed":
                return self._send(404, _error(f"Checkpoint {checkpoint} not found or not completed"))
            # The continued job trains the parent's model with the parent's LoRA settings.
            stored["model"] = parent.request.get("model")
            stored.setdefault("training_type", parent.request.get("training_type"))
        elif request.get("model") not in fake.known_models:
            return self._send(404, _error(f"Model {request.get('model')} is not supported"))
        method = (request.get("training_method") or {}).get("method", "sft")
        wanted = "PREFERENCE" if method == "dpo" else "CONVERSATION"
        report = fake.files[request["training_file"]].get("validation_report") or {}
        if report.get("dataset_format") not in (None, wanted):
            return self._send(400, _error(f"training_method {method} needs a {wanted.lower()} training file"))
        job = FakeJob(id=f"ft-{uuid.uuid4()}", request=stored, outcome=fake.next_job_outcome, created=time.time())
        fake._event(job, "job_pending", "Fine tune request created")
        with fake._lock:
            fake.jobs[job.id] = job
            if fake.create_then_fail_times > 0:
                fake.create_then_fail_times -= 1
                return self._send(500, _error("upstream timeout", "server_error"))
        self._send(200, fake.job_json(job, truncated=True))

    def _job(self, job_id) -> FakeJob | None:
        job = self.server_fake.jobs.get(job_id)
        if job is None:
            self._send(404, _error(f"Fine-tune job {job_id} not found"))
        return job

    def retrieve(self, query, body, job_id):
        job = self._job(job_id)
        if job:
            with self.server_fake._lock:
                self.server_fake.advance(job)
            self._send(200, self.server_fake.job_json(job))

    def list_jobs(self, query, body):
        jobs = sorted(self.server_fake.jobs.values(), key=lambda j: j.created)
        self._send(200, {"data": [self.server_fake.job_json(j, truncated=True) for j in jobs]})

    def cancel(self, query, body, job_id):
        job = self._job(job_id)
        if job is None:
            return
        if job.status in TERMINAL:
            return self._send(400, _error(f"Job {job_id} is already {job.status} and cannot be cancelled"))
        job.status = "cancel_requested"
        self.server_fake._event(job, "cancel_requested", "Cancel requested")
        self._send(200, self.server_fake.job_json(job, truncated=True))

    def events(self, query, body, job_id):
        job = self._job(job_id)
        if job:
            self._send(200, {"data": list(job.events)})

    def checkpoints(self, query, body, job_id):
        job = self._job(job_id)
        if job:
            data = []
            if job.status == "completed":
                data.append(
                    {
                        "step": job.total_steps,
                        "created_at": iso(time.time()),
                        "path": f"s3://fake/{job.id}/final",
                        "checkpoint_type": "Final",
                        "checkpoint": "adapter",
                    }
                )
            self._send(200, {"data": data})

    def download(self, query, body):
        fake = self.server_fake
        job_id = (query.get("ft_id") or [""])[0]
        if not query.get("checkpoint") and not query.get("checkpoint_step"):
            return self._send(400, _error("checkpoint or checkpoint_step is required"))
        job = fake.jobs.get(job_id)
        if job is None:
            return self._send(404, _error(f"Fine-tune job {job_id} not found"))
        if job.status != "completed" or fake.adapter_dir is None:
            return self._send(400, _error("Training job is not downloadable"))
        data = build_adapter_archive(fake.adapter_dir, fake.archive_mode)
        total = len(data)
        range_header = self.headers.get("Range")
        if range_header:
            start_s, _, end_s = range_header.removeprefix("bytes=").partition("-")
            start, end = int(start_s or 0), int(end_s) if end_s else total - 1
            end = min(end, total - 1)
            return self._send(
                206,
                raw=data[start : end + 1],
                content_type="application/octet-stream",
                headers={"Content-Range": f"bytes {start}-{end}/{total}", "Accept-Ranges": "bytes"},
            )
        self._send(200, raw=data, content_type="application/octet-stream", headers={"Accept-Ranges": "bytes"})

    def delete(self, query, body, job_id):
        if self.server_fake.jobs.pop(job_id, None) is None:
            return self._send(404, _error(f"Fine-tune job {job_id} not found"))
        self._send(200, {"message": f"Deleted {job_id}"})


_ROUTES = [
    (r"POST /v1/files", _Handler.files_create),
    (r"POST /v1/files/([^/]+)/preprocess", _Handler.files_preprocess),
    (r"GET /v1/files", _Handler.files_list),
    (r"GET /v1/files/([^/]+)", _Handler.files_retrieve),
    (r"GET /v1/fine-tunes/models/limits", _Handler.limits),
    (r"POST /v1/fine-tunes/estimate-price", _Handler.estimate),
    (r"POST /v1/fine-tunes", _Handler.create),
    (r"GET /v1/fine-tunes", _Handler.list_jobs),
    (r"GET /v1/fine-tunes/([^/]+)", _Handler.retrieve),
    (r"POST /v1/fine-tunes/([^/]+)/cancel", _Handler.cancel),
    (r"GET /v1/fine-tunes/([^/]+)/events", _Handler.events),
    (r"GET /v1/fine-tunes/([^/]+)/checkpoints", _Handler.checkpoints),
    (r"DELETE /v1/fine-tunes/([^/]+)", _Handler.delete),
    (r"GET /v1/finetune/download", _Handler.download),
]


def _tiny_base(folder: Path) -> Path:
    """A tiny random Llama (no tokenizer needed) to build a real adapter from."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def main() -> None:
    """Serve the fake on 127.0.0.1 for trying the CLI by hand:

    .venv/bin/python tests/together_server.py --port 8765 &
    export TOGETHER_BASE_URL=http://127.0.0.1:8765 TOGETHER_API_KEY=<printed key>
    cognitivetwin phase1 --data resources/demo/conversations.jsonl --suffix demo --yes
    """
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--adapter-dir", help="PEFT adapter folder to serve (default: a tiny one built now)")
    parser.add_argument("--outcome", default="completed", choices=("completed", "user_error", "error"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fake-together-"))
    adapter = (
        Path(args.adapter_dir)
        if args.adapter_dir
        else make_tiny_lora_adapter(_tiny_base(scratch / "base"), scratch / "adapter")
    )
    fake = FakeTogether(adapter_dir=adapter)
    fake.next_job_outcome = args.outcome

    class Handler(_Handler):
        server_fake = fake

    fake._server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"fake Together at {fake.base_url}  key: {fake.api_key}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
