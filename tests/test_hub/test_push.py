"""push_to_hub against a local HTTP endpoint that serves the Hub's preupload, LFS and commit calls."""

import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _FakeHub(BaseHTTPRequestHandler):
    calls: list = []
    lfs: dict = {}
    commits: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, obj, code=200):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self._body()
        self.calls.append(("POST", self.path))
        host = f"http://{self.headers['Host']}"
        if self.path == "/api/repos/create":
            req = json.loads(body)
            return self._json({"url": f"{host}/{req.get('organization')}/{req['name']}", "name": req["name"]})
        if self.path == "/api/validate-yaml":
            return self._json({"errors": [], "warnings": []})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._json({"files": [{"path": f["path"], "shouldIgnore": False,
                                          "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular"}
                                         for f in files]})
        if self.path.endswith(".git/info/lfs/objects/batch"):
            objs = json.loads(body)["objects"]
            return self._json({"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "authenticated": True,
                 "actions": {"upload": {"href": f"{host}/lfs-upload/{o['oid']}"}}} for o in objs]})
        if "/commit/" in self.path:
            lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
            self.commits.append(lines)
            repo = self.path.split("/api/models/", 1)[1].split("/commit/", 1)[0]
            return self._json({"commitUrl": f"{host}/{repo}/commit/{'1' * 40}", "commitOid": "1" * 40, "pullRequestUrl": None})
        self._json({"error": f"unexpected POST {self.path}"}, 404)

    def do_PUT(self):
        body = self._body()
        self.calls.append(("PUT", self.path))
        if self.path.startswith("/lfs-upload/"):
            self.lfs[self.path.rsplit("/", 1)[1]] = body
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._json({"error": "unexpected PUT"}, 404)

    def do_GET(self):
        self.calls.append(("GET", self.path))
        self._json({"error": f"unexpected GET {self.path}"}, 404)


@pytest.fixture
def fake_hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    _FakeHub.calls, _FakeHub.lfs, _FakeHub.commits = [], {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FakeHub
    server.shutdown()


def test_push_to_hub_uploads_exactly_the_repo_files(tmp_path, tiny_dataset, make_fql, fake_hub):
    endpoint, hub_state = fake_hub
    agent = make_fql(tiny_dataset)
    agent.save(tmp_path / "ckpt", task="ogbench/cube-single-task1")
    code = (
        "import agents, sys\n"
        f"a = agents.FQL.load({str(tmp_path / 'ckpt')!r})\n"
        "print(a.push_to_hub('me/fql-pushed', commit_message='genzoo test push', token='hf_fake'))\n"
    )
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "HF_HUB_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "/commit/" in out.stdout
    (commit,) = hub_state.commits
    header = commit[0]
    assert header["key"] == "header" and header["value"]["summary"] == "genzoo test push"
    regular = {x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in commit if x["key"] == "file"}
    lfs = {x["value"]["path"]: x["value"]["oid"] for x in commit if x["key"] == "lfsFile"}
    assert set(regular) == {"config.json", "README.md"} and set(lfs) == {"model.safetensors"}
    assert lfs["model.safetensors"] in hub_state.lfs
    assert b"library_name: genzoo" in regular["README.md"]
    assert json.loads(regular["config.json"])["algo"] == "FQL"
    assert ("POST", "/api/validate-yaml") in hub_state.calls  # the card's metadata was validated before upload
