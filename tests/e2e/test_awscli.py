"""The stock AWS CLI against the server, with nothing but a profile and --endpoint-url."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ACCOUNT, ROOT, register_node


def aws_cli():
    # The CLI installed next to this Python (the test venv), else one on PATH.
    local = Path(sys.executable).parent / "aws"
    return str(local) if local.exists() else shutil.which("aws")


def run(server, *args):
    env = {
        **os.environ,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.data_dir / "credentials"),
        "AWS_CONFIG_FILE": str(server.data_dir / "config"),
    }
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(k, None)
    out = subprocess.run(
        [aws_cli(), "--profile", "portcullis-admin", "--endpoint-url", server.endpoint, "--output", "json", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def test_aws_cli_seed_commands(server, admin):
    me = run(server, "sts", "get-caller-identity")
    assert me["Account"] == ACCOUNT and me["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"

    user = run(server, "iam", "create-user", "--user-name", "TestUserA",
               "--tags", "Key=Project,Value=test")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/TestUserA"

    policy = ROOT / "examples" / "seed" / "pattern-3-abac.json"
    run(server, "iam", "put-user-policy", "--user-name", "TestUserA", "--policy-name", "abac",
        "--policy-document", f"file://{policy}")
    got = run(server, "iam", "get-user-policy", "--user-name", "TestUserA", "--policy-name", "abac")
    assert got["PolicyDocument"] == json.loads(policy.read_text())

    node, _ = register_node(server, admin, "i-0885b2e35926f1fb3", {})
    run(server, "ec2", "create-tags", "--resources", node, "--tags", "Key=Project,Value=test")
    tags = run(server, "ec2", "describe-tags")["Tags"]
    assert {"ResourceId": node, "ResourceType": "instance", "Key": "Project", "Value": "test"} in tags

    assert run(server, "ssm", "describe-sessions", "--state", "Active")["Sessions"] == []


def test_aws_cli_reports_refusals(server, admin):
    """A malformed policy is refused with IAM's code and the engine's location."""
    run(server, "iam", "create-user", "--user-name", "TestUserA")
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(server.data_dir / "credentials"),
           "AWS_CONFIG_FILE": str(server.data_dir / "config")}
    out = subprocess.run(
        [aws_cli(), "--profile", "portcullis-admin", "--endpoint-url", server.endpoint,
         "iam", "put-user-policy", "--user-name", "TestUserA", "--policy-name", "bad",
         "--policy-document", '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"StartSession","Resource":"*"}}'],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode != 0
    assert "MalformedPolicyDocument" in out.stderr
    assert "Actions/Conditions must be prefaced by a vendor" in out.stderr
    assert "/Statement/Action" in out.stderr
