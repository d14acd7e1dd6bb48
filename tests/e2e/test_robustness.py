"""Signatures, bad input, restarts and the audit log, against the real server."""

import datetime
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import BIN, REGION, register_node

SSM_HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.DescribeSessions"}
IAM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def send(server, keys, service, body, headers, tamper=None, when=None, monkeypatch=None):
    """Signs like botocore, optionally at another time or tampered after signing, and sends."""
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=dict(headers))
    if when is not None:
        class Frozen(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):
                return when if tz else when.replace(tzinfo=None)
        monkeypatch.setattr(botocore.auth.datetime, "datetime", Frozen)
    SigV4Auth(Credentials(*keys), service, REGION if service != "iam" else "us-east-1").add_auth(req)
    if when is not None:
        monkeypatch.undo()
    if tamper:
        tamper(req)
    prepared = req.prepare()
    raw = urllib.request.Request(prepared.url, data=prepared.body, method="POST", headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(raw, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def json_code(text):
    return json.loads(text)["__type"]


def xml_code(text):
    return text.split("<Code>")[1].split("</Code>")[0]


def alive(server):
    with urllib.request.urlopen(server.endpoint + "/healthz", timeout=5) as resp:
        return resp.status == 200


# --- SigV4 -----------------------------------------------------------------------------

def test_valid_signature_is_accepted(server):
    status, body = send(server, server.admin_keys(), "ssm", b'{"State":"Active"}', SSM_HEADERS)
    assert status == 200, body


@pytest.mark.parametrize("service,headers,body,code", [
    ("ssm", SSM_HEADERS, b'{"State":"Active"}', "InvalidSignatureException"),
    ("iam", IAM_HEADERS, b"Action=ListUsers&Version=2010-05-08", "SignatureDoesNotMatch"),
])
def test_wrong_secret(server, service, headers, body, code):
    key_id, _ = server.admin_keys()
    status, text = send(server, (key_id, "x" * 40), service, body, headers)
    assert status in (400, 403)
    assert (json_code(text) if service == "ssm" else xml_code(text)) == code


@pytest.mark.parametrize("service,headers,body,code", [
    ("ssm", SSM_HEADERS, b'{"State":"Active"}', "UnrecognizedClientException"),
    ("iam", IAM_HEADERS, b"Action=ListUsers&Version=2010-05-08", "InvalidClientTokenId"),
])
def test_unknown_key(server, service, headers, body, code):
    status, text = send(server, ("AKIAUNKNOWNUNKNOWN00", "x" * 40), service, body, headers)
    assert (json_code(text) if service == "ssm" else xml_code(text)) == code


def test_expired_timestamp(server, monkeypatch):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    status, text = send(server, server.admin_keys(), "ssm", b'{"State":"Active"}', SSM_HEADERS,
                        when=when, monkeypatch=monkeypatch)
    assert status == 400
    assert json_code(text) == "InvalidSignatureException"
    assert "Signature expired" in json.loads(text)["message"]


def test_tampered_body(server):
    def tamper(req):
        req.data = b'{"State":"History"}'
    status, text = send(server, server.admin_keys(), "ssm", b'{"State":"Active"}', SSM_HEADERS, tamper)
    assert json_code(text) == "InvalidSignatureException"


def test_tampered_signed_header(server):
    def tamper(req):
        req.headers.replace_header("X-Amz-Target", "AmazonSSM.DescribeInstanceInformation")
    status, text = send(server, server.admin_keys(), "ssm", b"{}", SSM_HEADERS, tamper)
    assert json_code(text) == "InvalidSignatureException"


def test_missing_date_header(server):
    def tamper(req):
        del req.headers["X-Amz-Date"]
    status, text = send(server, server.admin_keys(), "ssm", b'{"State":"Active"}', SSM_HEADERS, tamper)
    assert status == 400
    assert json_code(text) in ("IncompleteSignatureException", "MissingAuthenticationTokenException")


def test_unsigned_request(server):
    raw = urllib.request.Request(server.endpoint + "/", data=b'{"State":"Active"}', method="POST",
                                 headers=SSM_HEADERS)
    try:
        urllib.request.urlopen(raw, timeout=10)
        pytest.fail("an unsigned request was accepted")
    except urllib.error.HTTPError as e:
        assert json_code(e.read().decode()) == "MissingAuthenticationTokenException"


def test_presigned_url_works_then_expires(server):
    sts = server.client("sts", server.admin_keys())
    # botocore signs Query presigned URLs for POST unless told; they are opened with GET.
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=2, HttpMethod="GET")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert b"<Arn>arn:aws:iam::123456789012:root</Arn>" in resp.read()
    time.sleep(3.5)
    try:
        urllib.request.urlopen(url, timeout=10)
        pytest.fail("an expired presigned URL was accepted")
    except urllib.error.HTTPError as e:
        assert xml_code(e.read().decode()) == "RequestExpired"


# --- Bad input -----------------------------------------------------------------------

def test_malformed_json(server):
    status, text = send(server, server.admin_keys(), "ssm", b'{"State": ', SSM_HEADERS)
    assert status == 400 and json_code(text) == "SerializationException"
    assert alive(server)


def test_wrong_types(server, admin):
    headers = {**SSM_HEADERS, "X-Amz-Target": "AmazonSSM.StartSession"}
    status, text = send(server, server.admin_keys(), "ssm", b'{"Target": 5}', headers)
    assert status == 400 and json_code(text) == "SerializationException"
    assert "Target" in json.loads(text)["message"]


def test_over_long_fields(server, admin):
    with pytest.raises(ClientError) as err:
        admin["ssm"].start_session(Target="i-" + "0" * 400)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        admin["iam"].create_user(UserName="u" * 65)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "userName" in err.value.response["Error"]["Message"]
    assert admin["iam"].list_users()["Users"] == []


def test_unknown_operations(server):
    headers = {**SSM_HEADERS, "X-Amz-Target": "AmazonSSM.LaunchMissiles"}
    status, text = send(server, server.admin_keys(), "ssm", b"{}", headers)
    assert json_code(text) == "UnknownOperationException"
    status, text = send(server, server.admin_keys(), "iam", b"Action=LaunchMissiles&Version=2010-05-08", IAM_HEADERS)
    assert xml_code(text) == "InvalidAction"


def test_oversize_policy_is_refused_and_nothing_is_created(server, admin):
    statements = ",".join(
        '{"Sid":"S%d","Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/i-%017x"}' % (i, i)
        for i in range(80))
    doc = '{"Version":"2012-10-17","Statement":[%s]}' % statements
    with pytest.raises(ClientError) as err:
        admin["iam"].create_policy(PolicyName="TooBig", PolicyDocument=doc)
    assert err.value.response["Error"]["Code"] == "LimitExceeded"
    assert "Cannot exceed quota for PolicySize: 6144" in err.value.response["Error"]["Message"]
    assert admin["iam"].list_policies(Scope="Local")["Policies"] == []


def test_non_utf8_body(server, admin):
    body = b"Action=CreateUser&Version=2010-05-08&UserName=%FF%FE"
    status, text = send(server, server.admin_keys(), "iam", body, IAM_HEADERS)
    assert status == 400
    assert xml_code(text) in ("MalformedQueryString", "ValidationError")
    assert admin["iam"].list_users()["Users"] == []


def test_ten_megabyte_body(server):
    body = b'{"State":"Active","Pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    try:
        status, text = send(server, server.admin_keys(), "ssm", body, SSM_HEADERS)
        assert status == 413 and json_code(text) == "RequestEntityTooLarge"
    except (ConnectionError, urllib.error.URLError):
        pass  # the server may close before the client finishes sending; it must not crash
    assert alive(server)


def test_failed_create_tags_writes_nothing(server, admin):
    node, _ = register_node(server, admin, "i-0885b2e35926f1fb3", {"Project": "test"})
    with pytest.raises(ClientError) as err:
        admin["ec2"].create_tags(Resources=[node, "i-0fffffffffffffff0"], Tags=[{"Key": "Project", "Value": "prod"}])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    tags = admin["ec2"].describe_tags()["Tags"]
    assert [(t["ResourceId"], t["Key"], t["Value"]) for t in tags] == [(node, "Project", "test")]


# --- Restart and audit ---------------------------------------------------------------

def test_state_survives_sigkill(server, admin):
    iam = admin["iam"]
    iam.create_user(UserName="TestUserA", Tags=[{"Key": "Project", "Value": "test"}])
    key = iam.create_access_key(UserName="TestUserA")["AccessKey"]
    doc = open(BIN.parents[2] / "examples" / "seed" / "pattern-3-abac.json").read()
    arn = iam.create_policy(PolicyName="abac", PolicyDocument=doc)["Policy"]["Arn"]
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=arn)
    node, credential = register_node(server, admin, "i-0885b2e35926f1fb3", {"Project": "test"})
    user_ssm = server.client("ssm", (key["AccessKeyId"], key["SecretAccessKey"]))
    session = user_ssm.start_session(Target=node)["SessionId"]
    user_ssm.terminate_session(SessionId=session)

    server.stop(signal.SIGKILL)
    server.start()

    admin_iam = server.client("iam", server.admin_keys())
    assert admin_iam.get_user(UserName="TestUserA")["User"]["Tags"] == [{"Key": "Project", "Value": "test"}]
    assert admin_iam.list_attached_user_policies(UserName="TestUserA")["AttachedPolicies"][0]["PolicyArn"] == arn
    tags = server.client("ec2", server.admin_keys()).describe_tags()["Tags"]
    assert (tags[0]["ResourceId"], tags[0]["Value"]) == (node, "test")
    history = server.client("ssm", server.admin_keys()).describe_sessions(State="History")["Sessions"]
    assert [(s["SessionId"], s["Status"]) for s in history] == [(session, "Terminated")]
    # The node's credential still works after the restart.
    status, _ = server.post("/v1/nodes/heartbeat", {}, {"authorization": f"Bearer {node}:{credential}"})
    assert status == 204


def test_audit_log_records_allowed_and_refused_calls(server, admin):
    iam = admin["iam"]
    iam.create_user(UserName="TestUserA", Tags=[{"Key": "Project", "Value": "test"}])
    key = iam.create_access_key(UserName="TestUserA")["AccessKey"]
    doc = open(BIN.parents[2] / "examples" / "seed" / "pattern-1-arn.json").read()
    iam.put_user_policy(UserName="TestUserA", PolicyName="arn", PolicyDocument=doc)
    register_node(server, admin, "i-0885b2e35926f1fb3", {})
    register_node(server, admin, "i-0123456789abcdef0", {})
    ssm = server.client("ssm", (key["AccessKeyId"], key["SecretAccessKey"]))
    ssm.start_session(Target="i-0885b2e35926f1fb3")
    with pytest.raises(ClientError):
        ssm.start_session(Target="i-0123456789abcdef0")

    out = subprocess.run([str(BIN), "audit", "tail", "--json", "-n", "50", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    starts = [e for e in events if e["action"] == "ssm:StartSession"]
    assert [e["decision"] for e in starts] == ["allow", "implicit_deny"]
    assert starts[0]["principal"] == "arn:aws:iam::123456789012:user/TestUserA"
    assert starts[0]["resource"] == "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3"
    assert starts[0]["statement"] == 'policy "user TestUserA inline policy arn" /Statement/0'
    assert starts[1]["error"] == "AccessDeniedException"
    assert starts[0]["source_ip"] == "127.0.0.1"
    assert all(e["request_id"] for e in events)
    # No secret ever reaches the audit log.
    assert key["SecretAccessKey"] not in out.stdout


# --- TLS -----------------------------------------------------------------------------

def test_tls(tmp_path):
    """--tls-cert/--tls-key: HTTPS for the API, wss:// stream URLs, and aws:SecureTransport."""
    import os
    from conftest import Server, self_signed_cert
    cert, key = self_signed_cert(tmp_path)
    s = Server(tmp_path / "data", extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    s.start()
    try:
        assert s.endpoint.startswith("https://127.0.0.1:")
        os.environ["AWS_CA_BUNDLE"] = str(cert)
        try:
            sts = s.client("sts", s.admin_keys())
            assert sts.get_caller_identity()["Account"] == "123456789012"
            iam = s.client("iam", s.admin_keys())
            iam.create_user(UserName="TestUserA")
            k = iam.create_access_key(UserName="TestUserA")["AccessKey"]
            # Allowed only over TLS: the condition sees aws:SecureTransport=true here.
            iam.put_user_policy(UserName="TestUserA", PolicyName="tls", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ssm:DescribeSessions", "Resource": "*",
                               "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}))
            ssm = s.client("ssm", (k["AccessKeyId"], k["SecretAccessKey"]))
            assert ssm.describe_sessions(State="Active")["Sessions"] == []
            # HTTP/2 (ALPN h2): the host is the `:authority`, not a Host header, and the
            # signature covers it. curl signs with SigV4 itself.
            out = subprocess.run(
                ["curl", "-sS", "--http2", "--cacert", str(cert), "-o", "/dev/stderr",
                 "-w", "%{http_version} %{http_code}",
                 "--aws-sigv4", "aws:amz:ap-northeast-1:ssm", "--user", f"{k['AccessKeyId']}:{k['SecretAccessKey']}",
                 "-H", "X-Amz-Target: AmazonSSM.DescribeSessions", "-H", "Content-Type: application/x-amz-json-1.1",
                 "-d", '{"State":"Active"}', s.endpoint + "/"],
                capture_output=True, text=True, timeout=30)
            assert out.stdout == "2 200", out.stdout + out.stderr
            assert json.loads(out.stderr) == {"Sessions": []}
        finally:
            del os.environ["AWS_CA_BUNDLE"]
    finally:
        s.stop()
