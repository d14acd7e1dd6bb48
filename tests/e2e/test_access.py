"""`portcullis access who-can|what-can` over the live store of a running server, and
`portcullis policy lint` on the seed's policies."""

import json
import subprocess

from conftest import ACCOUNT, BIN, REGION, ROOT, register_node

TEST_NODE = "i-0885b2e35926f1fb3"   # tagged Project=test
PROD_NODE = "i-0123456789abcdef0"   # tagged Project=prod


def portcullis(*args):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60)


def test_who_can_and_what_can_over_the_live_store(server, admin):
    iam = admin["iam"]
    abac = (ROOT / "examples" / "seed" / "pattern-3-abac.json").read_text()
    arn = iam.create_policy(PolicyName="abac", PolicyDocument=abac)["Policy"]["Arn"]
    for name, project in (("TestUserA", "test"), ("TestUserB", "prod"), ("TestUserC", "test")):
        iam.create_user(UserName=name, Tags=[{"Key": "Project", "Value": project}])
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=arn)
    iam.attach_user_policy(UserName="TestUserB", PolicyArn=arn)
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    register_node(server, admin, PROD_NODE, {"Project": "prod"})

    out = portcullis("access", "who-can", "--data-dir", str(server.data_dir),
                     "--target", TEST_NODE, "--json", "--all")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{TEST_NODE}"
    assert report["allowed"] == 1
    by_user = {a["user"]: a for a in report["answers"]}
    assert by_user["TestUserA"]["decision"] == "allow"
    assert by_user["TestUserA"]["deciding"][0]["label"] == (
        f'policy "arn:aws:iam::{ACCOUNT}:policy/abac" /Statement/0')
    assert by_user["TestUserB"]["decision"] == "implicit_deny"
    assert by_user["TestUserC"]["decision"] == "implicit_deny"
    assert "no identity-based policy allows" in by_user["TestUserC"]["reason"]

    # Text, and the same answer the server gives.
    out = portcullis("access", "who-can", "--data-dir", str(server.data_dir), "--target", PROD_NODE)
    assert out.returncode == 0, out.stderr
    assert f"user/TestUserB  by policy \"arn:aws:iam::{ACCOUNT}:policy/abac\" /Statement/0" in out.stdout

    out = portcullis("access", "what-can", "--data-dir", str(server.data_dir),
                     "--principal", "TestUserA", "--action", "ssm:StartSession",
                     "--action", "ssm:SendCommand", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [(a["node"], a["action"], a["decision"]) for a in report["answers"]] == [
        (TEST_NODE, "ssm:StartSession", "allow")]

    out = portcullis("access", "what-can", "--data-dir", str(server.data_dir),
                     "--principal", f"arn:aws:iam::{ACCOUNT}:user/TestUserC")
    assert out.returncode == 1, out.stdout

    # What-if: tagging the prod node Project=test gives TestUserA a shell there and takes
    # TestUserB's away; nothing in the store changes.
    out = portcullis("access", "diff", "--data-dir", str(server.data_dir), "--node", PROD_NODE,
                     "--add-tag", "Project=test", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [(p["after"]["user"], p["after"]["node"]) for p in report["gained"]] == [
        ("TestUserA", PROD_NODE)]
    assert [(p["before"]["user"], p["before"]["decision"], p["after"]["decision"])
            for p in report["lost"]] == [("TestUserB", "allow", "implicit_deny")]
    tags = admin["ec2"].describe_tags()["Tags"]
    assert {"Key": "Project", "Value": "prod", "ResourceId": PROD_NODE,
            "ResourceType": "instance"} in tags or any(
        t["ResourceId"] == PROD_NODE and t["Value"] == "prod" for t in tags)

    out = portcullis("access", "diff", "--data-dir", str(server.data_dir), "--user", "TestUserB",
                     "--detach", arn)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"detach {arn} from user TestUserB (1 users): 0 (user, node, action) "
                                 "pairs gain access, 1 lose it"), out.stdout
    assert f"- arn:aws:iam::{ACCOUNT}:user/TestUserB  ssm:StartSession  {PROD_NODE}" in out.stdout


def test_lint_names_the_seed_pitfall():
    seeds = sorted(str(p) for p in (ROOT / "examples" / "seed").glob("*.json"))
    out = portcullis("policy", "lint", "--json", *seeds)
    assert out.returncode == 1
    for line in out.stdout.splitlines():
        report = json.loads(line)
        assert [(f["code"], f["pointer"]) for f in report["findings"]] == [
            ("PC001", "/Statement/1/Resource/0")], report
    out = portcullis("policy", "lint", "--fail-on", "error", *seeds)
    assert out.returncode == 0, out.stdout
    out = portcullis("policy", "validate", *seeds)
    assert out.returncode == 0 and out.stdout.count("warning PC001") == 3, out.stdout


def test_expectation_files_run_with_the_conformance_suites():
    out = portcullis("policy", "test", str(ROOT / "examples" / "expectations"))
    assert out.returncode == 0, out.stdout
    assert out.stdout.splitlines()[-1] == "12 passed, 0 failed"
