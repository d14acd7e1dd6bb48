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


def test_access_analyzer_validate_policy_with_boto3_and_the_aws_cli(server, admin):
    """IAM Access Analyzer's ValidatePolicy, answered by the engine and the linter: the
    seed's policies get only the findings the README names, a risky one gets security
    warnings with AWS's locations, a broken one an ERROR, and a user without
    access-analyzer:ValidatePolicy is refused."""
    from test_awscli import run as aws
    analyzer = server.client("accessanalyzer", server.admin_keys())

    def findings(document, policy_type="IDENTITY_POLICY"):
        return analyzer.validate_policy(policyDocument=document, policyType=policy_type)["findings"]

    seed = {p.stem: p.read_text() for p in (ROOT / "examples" / "seed").glob("*.json")}
    codes = {name: sorted(f["issueCode"] for f in findings(doc)) for name, doc in seed.items()}
    lint = portcullis("policy", "lint", "--json", "--fail-on", "never",
                      *sorted(str(p) for p in (ROOT / "examples" / "seed").glob("*.json")))
    assert lint.returncode == 0, lint.stderr
    for line in lint.stdout.splitlines():
        report = json.loads(line)
        name = report["file"].rsplit("/", 1)[-1].removesuffix(".json")
        # The API and the CLI lint the same way.
        assert codes[name] == sorted(f["name"].upper().replace("-", "_") for f in report["findings"]), name

    risky = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:StartSession", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}, indent=2)
    found = findings(risky)
    by_code = {}
    for f in found:
        by_code.setdefault(f["issueCode"], f)  # the first of each, in document order
    assert by_code["WILDCARD_SESSION_RESOURCE"]["findingType"] == "SECURITY_WARNING"
    assert by_code["ALLOW_NOTACTION"]["findingType"] == "SECURITY_WARNING"
    loc = by_code["WILDCARD_SESSION_RESOURCE"]["locations"][0]
    assert loc["path"] == [{"value": "Statement"}, {"index": 0}, {"value": "Resource"}]
    start, end = loc["span"]["start"], loc["span"]["end"]
    assert risky[start["offset"]:end["offset"]] == '"*"'
    assert risky.splitlines()[start["line"] - 1][start["column"]:].startswith('"*"')
    assert "(PC010)" in by_code["WILDCARD_SESSION_RESOURCE"]["findingDetails"]

    page = analyzer.validate_policy(policyDocument=risky, policyType="IDENTITY_POLICY", maxResults=1)
    assert len(page["findings"]) == 1 and page["nextToken"]
    rest = analyzer.validate_policy(policyDocument=risky, policyType="IDENTITY_POLICY",
                                    nextToken=page["nextToken"])
    assert page["findings"] + rest["findings"] == found

    broken = findings('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "StartSession", "Resource": "*"}}')
    assert [f["findingType"] for f in broken] == ["ERROR"]
    assert broken[0]["issueCode"] == "MALFORMED_POLICY_DOCUMENT"
    assert "vendor" in broken[0]["findingDetails"]

    # The stock AWS CLI, with nothing but --endpoint-url.
    cli = aws(server, "accessanalyzer", "validate-policy", "--policy-type", "IDENTITY_POLICY",
              "--policy-document", risky)
    assert cli["findings"] == found

    # Refusals and bad input in AWS's shape.
    iam = admin["iam"]
    iam.create_user(UserName="Nobody")
    key = iam.create_access_key(UserName="Nobody")["AccessKey"]
    nobody = server.client("accessanalyzer", (key["AccessKeyId"], key["SecretAccessKey"]))
    try:
        nobody.validate_policy(policyDocument=risky, policyType="IDENTITY_POLICY")
        raise AssertionError("a user without access-analyzer:ValidatePolicy was answered")
    except nobody.exceptions.AccessDeniedException as e:
        msg = e.response["Error"]["Message"]
        assert f"arn:aws:iam::{ACCOUNT}:user/Nobody" in msg and "access-analyzer:ValidatePolicy" in msg
    try:
        analyzer.validate_policy(policyDocument=risky, policyType="RESOURCE_POLICY")
        raise AssertionError("a resource policy was answered")
    except analyzer.exceptions.ValidationException as e:
        assert "RESOURCE_POLICY" in e.response["Error"]["Message"]


def portcullis_api(server, keys, operation, body):
    """A Portcullis operation (JSON 1.1, SigV4 for service `portcullis`), signed by botocore."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body).encode()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Portcullis.{operation}"})
    SigV4Auth(Credentials(*keys), "portcullis", REGION).add_auth(req)
    prepared = urllib.request.Request(server.endpoint + "/", data=data, method="POST",
                                      headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_access_matrix_and_stored_policy_lint_over_the_api(server, admin):
    """WhoCan, WhatCan and LintStoredPolicies over the API give the CLI's answers (one engine,
    one shape); each is authorized as the module docs say; curl's own SigV4 signing works for
    scripts."""
    iam = admin["iam"]
    abac = (ROOT / "examples" / "seed" / "pattern-3-abac.json").read_text()
    arn = iam.create_policy(PolicyName="abac", PolicyDocument=abac)["Policy"]["Arn"]
    for name, project in (("TestUserA", "test"), ("TestUserB", "prod")):
        iam.create_user(UserName=name, Tags=[{"Key": "Project", "Value": project}])
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    iam.attach_user_policy(UserName="TestUserA", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    register_node(server, admin, PROD_NODE, {"Project": "prod"})
    keys = server.admin_keys()

    status, api = portcullis_api(server, keys, "WhoCan", {"Target": TEST_NODE, "All": True})
    assert status == 200, api
    cli = json.loads(portcullis("access", "who-can", "--data-dir", str(server.data_dir),
                                "--target", TEST_NODE, "--json", "--all").stdout)
    assert api["Answers"] == cli["answers"] and api["Allowed"] == cli["allowed"] == 1
    assert api["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{TEST_NODE}"

    status, api = portcullis_api(server, keys, "WhatCan", {"Principal": "TestUserB"})
    assert status == 200, api
    assert [(a["node"], a["decision"]) for a in api["Answers"]] == [(PROD_NODE, "allow")]

    # The rule (the console's too): iam:SimulatePrincipalPolicy on the users the answer is
    # about, and ssm:DescribeInstanceInformation. TestUserA's ReadOnlyAccess has both
    # (iam:Simulate*, ssm:Describe*); TestUserB has neither.
    a_key = iam.create_access_key(UserName="TestUserA")["AccessKey"]
    status, api = portcullis_api(server, (a_key["AccessKeyId"], a_key["SecretAccessKey"]),
                                 "WhatCan", {"Principal": "TestUserA"})
    assert status == 200 and api["Allowed"] == 1, api
    b_key = iam.create_access_key(UserName="TestUserB")["AccessKey"]
    status, api = portcullis_api(server, (b_key["AccessKeyId"], b_key["SecretAccessKey"]),
                                 "WhoCan", {"Target": TEST_NODE})
    assert status == 400 and api["__type"] == "AccessDeniedException", api
    assert "ssm:DescribeInstanceInformation" in api["message"] and "user/TestUserB" in api["message"]
    # Allowed to simulate one user only: that user's answer, but no list of everyone, and the
    # refusal names no other user.
    iam.create_user(UserName="Auditor")
    iam.put_user_policy(UserName="Auditor", PolicyName="one", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ssm:DescribeInstanceInformation", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy",
             "Resource": f"arn:aws:iam::{ACCOUNT}:user/TestUserB"}]}))
    k = iam.create_access_key(UserName="Auditor")["AccessKey"]
    auditor = (k["AccessKeyId"], k["SecretAccessKey"])
    status, api = portcullis_api(server, auditor, "WhatCan", {"Principal": "TestUserB"})
    assert status == 200 and api["Allowed"] == 1, api
    status, api = portcullis_api(server, auditor, "WhatCan", {"Principal": "TestUserA"})
    assert status == 403 and api["__type"] == "AccessDenied" and "user/TestUserA" in api["message"], api
    status, api = portcullis_api(server, auditor, "WhoCan", {"Target": TEST_NODE})
    assert status == 403 and f"arn:aws:iam::{ACCOUNT}:user/*" in api["message"], api
    assert "TestUserA" not in api["message"], api
    status, api = portcullis_api(server, auditor, "LintStoredPolicies", {})
    assert status == 403 and "iam:GetAccountAuthorizationDetails" in api["message"], api

    # Bad input in AWS's shape.
    status, api = portcullis_api(server, keys, "WhoCan", {})
    assert status == 400 and api["__type"] == "ValidationException" and "Target" in api["message"]
    status, api = portcullis_api(server, keys, "WhatCan", {"Principal": "Nobody"})
    assert status == 404 and api["__type"] == "NoSuchEntity", api
    status, api = portcullis_api(server, keys, "Nope", {})
    assert status == 400 and api["__type"] == "UnknownOperationException", api

    status, api = portcullis_api(server, keys, "LintStoredPolicies", {})
    assert status == 200, api
    stored = {p["Policy"]: [(f["Code"], f["Pointer"]) for f in p["Findings"]] for p in api["Policies"]}
    assert stored[arn] == [("PC001", "/Statement/1/Resource/0")], stored

    # curl signs for scripts.
    out = subprocess.run(
        ["curl", "-sS", "--aws-sigv4", f"aws:amz:{REGION}:portcullis", "--user", f"{keys[0]}:{keys[1]}",
         "-H", "X-Amz-Target: Portcullis.WhoCan", "-H", "Content-Type: application/x-amz-json-1.1",
         "-d", json.dumps({"Target": PROD_NODE}), server.endpoint + "/"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert [a["user"] for a in json.loads(out.stdout)["Answers"]] == ["TestUserB"], out.stdout
