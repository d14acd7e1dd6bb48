"""The seed article, end to end through boto3: three ways to let TestUserA open sessions only
on chosen instances, and to end only their own sessions."""

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, ROOT, register_node

TEST_NODE = "i-0885b2e35926f1fb3"   # tagged Project=test, named by pattern 1
PROD_NODE = "i-0123456789abcdef0"   # tagged Project=prod

PATTERNS = {
    "pattern-1-arn": TEST_NODE,
    "pattern-2-fixed-tag": TEST_NODE,
    "pattern-3-abac": TEST_NODE,
}


def denied_message(user, action, resource):
    return (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: {action} "
            f"on resource: {resource} because no identity-based policy allows the {action} action")


def instance_arn(node):
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{node}"


@pytest.fixture
def seed(server, admin):
    iam = admin["iam"]
    keys = {}
    for name, project in (("TestUserA", "test"), ("TestUserB", "test")):
        iam.create_user(UserName=name, Tags=[{"Key": "Project", "Value": project}])
        iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        k = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    register_node(server, admin, PROD_NODE, {"Project": "prod"})
    arns = {}
    for pattern in PATTERNS:
        doc = (ROOT / "examples" / "seed" / f"{pattern}.json").read_text()
        arns[pattern] = iam.create_policy(PolicyName=pattern, PolicyDocument=doc)["Policy"]["Arn"]
    return {"keys": keys, "policies": arns}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_seed_pattern(server, admin, seed, pattern):
    iam = admin["iam"]
    for user in ("TestUserA", "TestUserB"):
        iam.attach_user_policy(UserName=user, PolicyArn=seed["policies"][pattern])
    ssm_a = server.client("ssm", seed["keys"]["TestUserA"])
    ssm_b = server.client("ssm", seed["keys"]["TestUserB"])

    # Allowed: a session opens on the chosen instance.
    started = ssm_a.start_session(Target=TEST_NODE)
    assert started["SessionId"].startswith("TestUserA-")
    assert started["StreamUrl"].endswith(f"/v1/data-channel/{started['SessionId']}?role=publish_subscribe")
    assert len(started["TokenValue"]) >= 43

    # Denied: the other instance, with AWS's message naming user, action and resource.
    with pytest.raises(ClientError) as err:
        ssm_a.start_session(Target=PROD_NODE)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["Error"]["Message"] == denied_message(
        "TestUserA", "ssm:StartSession", instance_arn(PROD_NODE))

    # Own session: resume and terminate are allowed.
    resumed = ssm_a.resume_session(SessionId=started["SessionId"])
    assert resumed["SessionId"] == started["SessionId"]
    assert resumed["TokenValue"] != started["TokenValue"]

    # Someone else's session: refused, and it keeps running.
    other = ssm_b.start_session(Target=TEST_NODE)["SessionId"]
    with pytest.raises(ClientError) as err:
        ssm_a.terminate_session(SessionId=other)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["Error"]["Message"] == denied_message(
        "TestUserA", "ssm:TerminateSession", f"arn:aws:ssm:{REGION}:{ACCOUNT}:session/{other}")
    active = ssm_a.describe_sessions(State="Active")["Sessions"]
    assert other in [s["SessionId"] for s in active]

    assert ssm_a.terminate_session(SessionId=started["SessionId"])["SessionId"] == started["SessionId"]
    history = ssm_a.describe_sessions(State="History")["Sessions"]
    ended = [s for s in history if s["SessionId"] == started["SessionId"]]
    assert ended and ended[0]["Status"] == "Terminated"
    assert ended[0]["Owner"] == f"arn:aws:iam::{ACCOUNT}:user/TestUserA"

    for user in ("TestUserA", "TestUserB"):
        iam.detach_user_policy(UserName=user, PolicyArn=seed["policies"][pattern])


def test_pattern_3_follows_the_users_tag(server, admin, seed):
    """ABAC: retagging the user moves their access from one instance to the other."""
    iam = admin["iam"]
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=seed["policies"]["pattern-3-abac"])
    ssm_a = server.client("ssm", seed["keys"]["TestUserA"])
    ssm_a.start_session(Target=TEST_NODE)
    iam.tag_user(UserName="TestUserA", Tags=[{"Key": "Project", "Value": "prod"}])
    ssm_a.start_session(Target=PROD_NODE)
    with pytest.raises(ClientError) as err:
        ssm_a.start_session(Target=TEST_NODE)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"


def test_without_a_session_policy_nothing_opens(server, admin, seed):
    """ReadOnlyAccess alone lists sessions but opens none."""
    ssm_a = server.client("ssm", seed["keys"]["TestUserA"])
    assert ssm_a.describe_sessions(State="Active")["Sessions"] == []
    with pytest.raises(ClientError) as err:
        ssm_a.start_session(Target=TEST_NODE)
    assert err.value.response["Error"]["Message"] == denied_message(
        "TestUserA", "ssm:StartSession", instance_arn(TEST_NODE))


def test_refusal_comes_before_existence(server, admin, seed):
    """An unknown instance is refused like a known one: the refusal reveals nothing."""
    iam = admin["iam"]
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=seed["policies"]["pattern-1-arn"])
    ssm_a = server.client("ssm", seed["keys"]["TestUserA"])
    with pytest.raises(ClientError) as err:
        ssm_a.start_session(Target="i-0fffffffffffffff0")
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    # The administrator is allowed, and then learns the target is not connected.
    with pytest.raises(ClientError) as err:
        admin["ssm"].start_session(Target="i-0fffffffffffffff0")
    assert err.value.response["Error"]["Code"] == "TargetNotConnected"


def test_named_document_is_authorized_too(server, admin, seed):
    """Naming a document adds a check on the document's ARN, which the seed policies lack."""
    iam = admin["iam"]
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=seed["policies"]["pattern-1-arn"])
    ssm_a = server.client("ssm", seed["keys"]["TestUserA"])
    with pytest.raises(ClientError) as err:
        ssm_a.start_session(Target=TEST_NODE, DocumentName="AWS-StartPortForwardingSession")
    assert err.value.response["Error"]["Message"] == denied_message(
        "TestUserA", "ssm:StartSession", f"arn:aws:ssm:{REGION}::document/AWS-StartPortForwardingSession")
