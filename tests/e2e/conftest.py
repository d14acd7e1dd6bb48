"""End-to-end fixtures: the real `portcullis` binary on a free port, driven by boto3.

The binary comes from PORTCULLIS_BIN (default: target/debug/portcullis, which
`scripts/test` builds first).
"""

import configparser
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("PORTCULLIS_BIN", ROOT / "target" / "debug" / "portcullis"))
ACCOUNT = "123456789012"
REGION = "ap-northeast-1"


def self_signed_cert(tmp_path):
    """A throwaway certificate for 127.0.0.1 (not a CA: the agent's webpki refuses a CA as
    the server's own certificate); returns (cert, key) paths."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:FALSE",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Server:
    """A running `portcullis server` with its data dir; restartable."""

    def __init__(self, data_dir: Path, extra=()):
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc = None
        self.endpoint = None
        self.port = 0

    def start(self):
        listen = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(BIN), "server", "--data-dir", str(self.data_dir), "--listen", listen,
             "--account-id", ACCOUNT, "--region", REGION, *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited: " + self.proc.stderr.read())
            m = re.search(r"listening on (https?://127\.0\.0\.1:(\d+))", line)
            if m:
                self.endpoint = m.group(1)
                self.port = int(m.group(2))  # restarts keep the port
                return self
        raise RuntimeError("server did not start in time")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def admin_keys(self):
        cp = configparser.ConfigParser()
        cp.read(self.data_dir / "credentials")
        sec = cp["portcullis-admin"]
        return sec["aws_access_key_id"], sec["aws_secret_access_key"]

    def client(self, service, keys):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
            config=Config(retries={"max_attempts": 1}),
        )

    def post(self, path, body, headers=None):
        req = urllib.request.Request(
            self.endpoint + path, data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "null")


# Root's profile on some machines (this project's CI and dev VMs among them) runs `pyenv
# rehash` at every login, which takes a lock file in pyenv's shims directory. A shell these
# tests end while it is still logging in can leave the lock behind, and then every later
# login waits 60 s for it: every session test after that times out. A rehash holds the lock
# for well under a second, so one older than 10 s is stale.
PYENV_LOCK = Path.home() / ".pyenv" / "shims" / ".pyenv-shim"


@pytest.fixture(autouse=True)
def no_stale_pyenv_lock():
    try:
        if time.time() - PYENV_LOCK.stat().st_mtime > 10:
            PYENV_LOCK.unlink()
    except FileNotFoundError:
        pass
    yield


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


@pytest.fixture
def admin(server):
    keys = server.admin_keys()
    return {svc: server.client(svc, keys) for svc in ("iam", "sts", "ec2", "ssm")}


def register_node(server, admin, instance_id, tags):
    """Stands in for the agent: registers through the agent's endpoint, sends a heartbeat,
    and tags the instance through EC2."""
    act = admin["ssm"].create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
    status, body = server.post("/v1/nodes/register", {
        "ActivationId": act["ActivationId"], "ActivationCode": act["ActivationCode"],
        "InstanceId": instance_id, "Hostname": "node-" + instance_id, "Platform": "Linux",
        "AgentVersion": "0.1.0", "IpAddress": "10.0.0.1",
    })
    assert status == 200, body
    node_id, credential = body["NodeId"], body["Credential"]
    status, _ = server.post("/v1/nodes/heartbeat", {}, {"authorization": f"Bearer {node_id}:{credential}"})
    assert status == 204
    if tags:
        admin["ec2"].create_tags(Resources=[node_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return node_id, credential
