"""A loopback stand-in for the Hugging Face Hub, speaking what `huggingface_hub` really calls.

Endpoints (as read in huggingface_hub 2.x: `hf_api.py` model_info / list_repo_tree /
get_paths_info, `file_download.py` get_hf_file_metadata / http_get):

- `GET /api/models/{repo}/revision/{rev}`: `{"id", "sha", "siblings", "gated"}`;
- `GET /api/models/{repo}/tree/{rev}?recursive=...`: `[{"type": "file", "oid", "size",
  "path", "lfs"?}]` (one page, no `Link` header);
- `POST /api/models/{repo}/paths-info/{rev}` (form field `paths`): the same entries;
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: `X-Repo-Commit`, `ETag` (the LFS sha256 for
  weights, the git blob id otherwise), `Content-Length`, `Accept-Ranges`; `Range: bytes=N-`
  gives `206` with `Content-Range`.

Errors carry `X-Error-Code` as the Hub does: `RepoNotFound` (404/401), `EntryNotFound`,
`GatedRepo` (401 without a token, 403 with a token that has not accepted the licence).

Test switches: `cut_once[path] = n` sends `n` bytes of a GET then drops the connection
once (huggingface_hub retries with a Range request); `fail[path] = status` answers every
GET of that file with the status until cleared. `requests` logs (method, path, range, auth).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    gated: bool = False
    accepted_tokens: set[str] = field(default_factory=set)
    commit: str = ""

    def __post_init__(self):
        if not self.commit:
            digest = hashlib.sha1()
            for name in sorted(self.files):
                digest.update(name.encode() + self.files[name])
            self.commit = digest.hexdigest()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        item = {"type": "file", "oid": blob, "size": len(data), "path": path}
        if path.endswith(".safetensors"):
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return item

    def etag(self, path: str) -> str:
        entry = self.entry(path)
        return entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]


class FakeHub:
    """`with FakeHub({"org/name": FakeRepo(...)}) as hub:` then HF_ENDPOINT=hub.url."""

    def __init__(self, repos: dict[str, FakeRepo]):
        self.repos = repos
        self.cut_once: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.requests: list[tuple[str, str, str | None, bool]] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle on, the body waits for the client's
            # delayed ACK (40 ms a response on loopback).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet test output
                pass

            def do_GET(self):
                hub._handle(self, "GET")

            def do_HEAD(self):
                hub._handle(self, "HEAD")

            def do_POST(self):
                hub._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(  # shutdown() waits up to one poll interval
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def file_gets(self, path_suffix: str) -> list[tuple[str, str, str | None, bool]]:
        return [r for r in self.requests if r[0] == "GET" and "/resolve/" in r[1] and r[1].endswith(path_suffix)]

    # ----- routing ------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        path = unquote(url.path)
        auth = request.headers.get("Authorization")
        with self._lock:
            self.requests.append((method, path, request.headers.get("Range"), bool(auth)))
        body = b""
        if method == "POST":
            body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(revision|tree|paths-info)/([^/]+)(/.*)?", path)
        if api:
            return self._api(request, method, api.group(1), api.group(2), api.group(3), parse_qs(url.query), body)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve:
            return self._resolve(request, method, resolve.group(1), resolve.group(2), resolve.group(3), auth)
        self._error(request, 404, "EntryNotFound", "no such route")

    def _repo(self, request, repo_id: str, revision: str) -> FakeRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(request, 401, "RepoNotFound", "Repository not found")
            return None
        if revision not in ("main", repo.commit):
            self._error(request, 404, "RevisionNotFound", "Invalid rev id")
            return None
        return repo

    def _api(self, request, method, repo_id, kind, revision, query, body) -> None:
        repo = self._repo(request, repo_id, revision)
        if repo is None:
            return
        if kind == "revision":
            payload = {
                "id": repo_id,
                "sha": repo.commit,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "siblings": [{"rfilename": name} for name in sorted(repo.files)],
            }
        elif kind == "tree":
            payload = [repo.entry(name) for name in sorted(repo.files)]
        else:  # paths-info: form-encoded `paths` (repeated) and `expand`
            wanted = parse_qs(body.decode()).get("paths", [])
            payload = [repo.entry(name) for name in wanted if name in repo.files]
        self._json(request, 200, payload, method)

    def _resolve(self, request, method, repo_id, revision, filename, auth) -> None:
        repo = self._repo(request, repo_id, revision)
        if repo is None:
            return
        if repo.gated:
            token = (auth or "").removeprefix("Bearer ").strip()
            if not token:
                return self._error(request, 401, "GatedRepo", f"Access to model {repo_id} is restricted.")
            if token not in repo.accepted_tokens:
                return self._error(
                    request,
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list.",
                )
        if filename not in repo.files:
            return self._error(request, 404, "EntryNotFound", f"{filename} does not exist", commit=repo.commit)
        if method == "GET" and filename in self.fail:
            return self._error(request, self.fail[filename], None, "server error")
        data = repo.files[filename]
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range") or "")
        if match and method == "GET":
            start, status = int(match.group(1)), 206
        chunk = data[start:]
        request.send_response(status)
        request.send_header("X-Repo-Commit", repo.commit)
        request.send_header("ETag", f'"{repo.etag(filename)}"')
        request.send_header("Accept-Ranges", "bytes")
        request.send_header("Content-Length", str(len(chunk)))
        request.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        request.end_headers()
        if method == "HEAD":
            return
        cut = None
        with self._lock:
            if filename in self.cut_once and status == 200:
                cut = self.cut_once.pop(filename)
        if cut is not None:
            request.wfile.write(chunk[:cut])
            request.wfile.flush()
            request.close_connection = True
            return
        request.wfile.write(chunk)

    # ----- responses ----------------------------------------------------------------------

    def _json(self, request, status: int, payload, method: str = "GET") -> None:
        raw = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(raw)

    def _error(self, request, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        raw = json.dumps({"error": message}).encode()
        request.send_response(status)
        if code:
            request.send_header("X-Error-Code", code)
        request.send_header("X-Error-Message", message)
        if commit:
            request.send_header("X-Repo-Commit", commit)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(raw)
