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


def _offline_hfapi(monkeypatch, fail_at="create_repo"):
    """Replace HfApi by one whose ``fail_at`` call raises what huggingface_hub raises with no network."""
    import httpx2
    import huggingface_hub

    calls = []

    class OfflineApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append("create_repo")
            if fail_at == "create_repo":
                raise httpx2.ConnectError("[Errno -2] Name or service not known")

        def upload_folder(self, **kwargs):
            calls.append("upload_folder")
            raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "HfApi", OfflineApi)
    return calls


@pytest.mark.parametrize("fail_at", ["create_repo", "upload_folder"])
def test_push_folder_offline_raises_a_clear_error(tmp_path, monkeypatch, fail_at):
    import hub
    from hub.files import HubUnreachableError

    for name in ("model.safetensors", "config.json", "README.md"):
        (tmp_path / name).write_text("x")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = _offline_hfapi(monkeypatch, fail_at)
    with pytest.raises(HubUnreachableError) as info:
        hub.push_folder(tmp_path, "me/x", token="hf_fake")
    msg = str(info.value)
    assert msg.startswith("the Hugging Face Hub is not reachable (ConnectError: [Errno -2] Name or service not known)")
    assert msg.endswith("nothing was uploaded to me/x")
    assert isinstance(info.value, hub.CheckpointError) and calls[-1] == fail_at
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_push_folder_lets_other_errors_through(tmp_path, monkeypatch):
    import huggingface_hub

    import hub

    class RefusingApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            raise PermissionError("403 Forbidden")

    for name in ("model.safetensors", "config.json", "README.md"):
        (tmp_path / name).write_text("x")
    monkeypatch.setattr(huggingface_hub, "HfApi", RefusingApi)
    with pytest.raises(PermissionError, match="403"):
        hub.push_folder(tmp_path, "me/x", token="hf_fake")


def test_cli_push_offline_prints_one_line(tmp_path, monkeypatch, capsys):
    import shutil

    import hub
    from zoo.cli import main

    ckpt = tmp_path / "ckpt"
    shutil.copytree(hub.bundled_path("genzoo/fql-ogbench-cube-single-task1-seed0"), ckpt)  # has results.json: no eval
    _offline_hfapi(monkeypatch)
    assert main(["push", str(ckpt), "--repo-id", "me/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("genzoo: error: the Hugging Face Hub is not reachable (ConnectError:")
    assert "nothing was uploaded" in err
