"""IAM end to end through boto3: groups, managed policy versions, login profiles and the
policy simulator, with IAM's error codes and messages, and the state each refused call
leaves behind (read back: nothing half-written)."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, register_node

TEST_NODE = "i-0885b2e35926f1fb3"   # tagged Project=test
PROD_NODE = "i-0123456789abcdef0"   # tagged Project=prod
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

START_ANYWHERE = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ssm:StartSession", "Resource": "*"}],
})

# The seed's ABAC pattern, as a group policy: sessions on instances of the user's project.
ABAC = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "SameProject",
      "Effect": "Allow",
      "Action": "ssm:StartSession",
      "Resource": "arn:aws:ec2:*:*:instance/*",
      "Condition": {"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}}
    }
  ]
}"""


def refused(call, **kwargs):
    """The (code, message) of a refused call."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    e = err.value.response["Error"]
    return e["Code"], e["Message"]


def instance_arn(node):
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{node}"


def user_with_key(iam, server, name, tags=()):
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags])
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return (k["AccessKeyId"], k["SecretAccessKey"])


def group_state(iam, name):
    """Everything a group has, to compare before and after a refused call."""
    return (
        iam.get_group(GroupName=name)["Group"],
        [u["UserName"] for u in iam.get_group(GroupName=name)["Users"]],
        iam.list_group_policies(GroupName=name)["PolicyNames"],
        iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"],
    )


# Groups


def test_group_lifecycle_and_delete_conflicts(admin):
    iam = admin["iam"]
    group = iam.create_group(GroupName="Ops", Path="/teams/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/teams/Ops"
    assert group["Path"] == "/teams/" and group["GroupName"] == "Ops"
    assert group["GroupId"].startswith("AGPA") and len(group["GroupId"]) == 21
    assert refused(iam.create_group, GroupName="ops") == (
        "EntityAlreadyExists", "Group with name ops already exists.")
    iam.create_group(GroupName="Admins")
    assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["Admins", "Ops"]
    assert [g["GroupName"] for g in iam.list_groups(PathPrefix="/teams/")["Groups"]] == ["Ops"]

    iam.create_user(UserName="alice")
    iam.add_user_to_group(GroupName="Ops", UserName="alice")
    iam.add_user_to_group(GroupName="Ops", UserName="alice")  # again: no change
    iam.add_user_to_group(GroupName="Admins", UserName="alice")
    got = iam.get_group(GroupName="Ops")
    assert got["Group"] == group
    assert [u["UserName"] for u in got["Users"]] == ["alice"]
    assert got["Users"][0]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert got["IsTruncated"] is False
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="alice")["Groups"]] == [
        "Admins", "Ops"]
    assert refused(iam.add_user_to_group, GroupName="Ops", UserName="nobody") == (
        "NoSuchEntity", "The user with name nobody cannot be found.")
    assert refused(iam.add_user_to_group, GroupName="Nope", UserName="alice") == (
        "NoSuchEntity", "The group with name Nope cannot be found.")
    assert refused(iam.list_groups_for_user, UserName="nobody") == (
        "NoSuchEntity", "The user with name nobody cannot be found.")

    # A user in a group is not deleted.
    assert refused(iam.delete_user, UserName="alice") == (
        "DeleteConflict", "Cannot delete entity, must remove users from group first.")
    assert iam.get_user(UserName="alice")["User"]["UserName"] == "alice"

    # Members, inline policies, attached policies: each keeps the group, which stays whole.
    before = group_state(iam, "Ops")
    assert refused(iam.delete_group, GroupName="Ops") == (
        "DeleteConflict", "Cannot delete entity, must remove users from group first.")
    assert group_state(iam, "Ops") == before
    iam.remove_user_from_group(GroupName="Ops", UserName="alice")
    assert refused(iam.remove_user_from_group, GroupName="Ops", UserName="alice") == (
        "NoSuchEntity", "The user with name alice cannot be found.")
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="alice")["Groups"]] == [
        "Admins"]

    iam.put_group_policy(GroupName="Ops", PolicyName="Start", PolicyDocument=START_ANYWHERE)
    before = group_state(iam, "Ops")
    assert refused(iam.delete_group, GroupName="Ops") == (
        "DeleteConflict", "Cannot delete entity, must delete policies first.")
    assert group_state(iam, "Ops") == before
    iam.delete_group_policy(GroupName="Ops", PolicyName="Start")

    iam.attach_group_policy(GroupName="Ops", PolicyArn=READ_ONLY)
    before = group_state(iam, "Ops")
    assert refused(iam.delete_group, GroupName="Ops") == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    assert group_state(iam, "Ops") == before
    iam.detach_group_policy(GroupName="Ops", PolicyArn=READ_ONLY)

    iam.delete_group(GroupName="Ops")
    assert refused(iam.get_group, GroupName="Ops") == (
        "NoSuchEntity", "The group with name Ops cannot be found.")
    assert refused(iam.delete_group, GroupName="Ops") == (
        "NoSuchEntity", "The group with name Ops cannot be found.")
    assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["Admins"]


def test_group_policies_inline_and_attached(admin):
    iam = admin["iam"]
    iam.create_group(GroupName="Ops")
    iam.put_group_policy(GroupName="Ops", PolicyName="abac", PolicyDocument=ABAC)
    got = iam.get_group_policy(GroupName="Ops", PolicyName="abac")
    assert got["GroupName"] == "Ops" and got["PolicyName"] == "abac"
    assert got["PolicyDocument"] == json.loads(ABAC)
    assert iam.list_group_policies(GroupName="Ops")["PolicyNames"] == ["abac"]
    assert refused(iam.get_group_policy, GroupName="Ops", PolicyName="nope") == (
        "NoSuchEntity", "The group policy with name nope cannot be found.")
    assert refused(iam.delete_group_policy, GroupName="Ops", PolicyName="nope") == (
        "NoSuchEntity", "The group policy with name nope cannot be found.")
    assert refused(iam.get_group_policy, GroupName="Nope", PolicyName="abac") == (
        "NoSuchEntity", "The group with name Nope cannot be found.")

    # A malformed document is refused with the engine's message, and nothing is stored.
    code, message = refused(
        iam.put_group_policy, GroupName="Ops", PolicyName="bad",
        PolicyDocument='{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"StartSession","Resource":"*"}}')
    assert code == "MalformedPolicyDocument"
    assert "Actions/Conditions must be prefaced by a vendor" in message
    assert iam.list_group_policies(GroupName="Ops")["PolicyNames"] == ["abac"]

    # Together, a group's inline policies stay within 5,120 characters (no whitespace).
    actions = [f"ssm:Describe{i:04}" for i in range(100)]
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}]})
    iam.put_group_policy(GroupName="Ops", PolicyName="big1", PolicyDocument=big)
    iam.put_group_policy(GroupName="Ops", PolicyName="big2", PolicyDocument=big)
    assert refused(iam.put_group_policy, GroupName="Ops", PolicyName="big3",
                   PolicyDocument=big) == (
        "LimitExceeded", "Maximum policy size of 5120 bytes exceeded for group Ops")
    assert iam.list_group_policies(GroupName="Ops")["PolicyNames"] == ["abac", "big1", "big2"]

    # Attached policies, with the path filter.
    policy = iam.create_policy(PolicyName="Start", Path="/ssm/",
                               PolicyDocument=START_ANYWHERE)["Policy"]
    iam.attach_group_policy(GroupName="Ops", PolicyArn=policy["Arn"])
    iam.attach_group_policy(GroupName="Ops", PolicyArn=READ_ONLY)
    attached = iam.list_attached_group_policies(GroupName="Ops")["AttachedPolicies"]
    assert {"PolicyName": "Start", "PolicyArn": policy["Arn"]} in attached
    assert {"PolicyName": "ReadOnlyAccess", "PolicyArn": READ_ONLY} in attached
    assert iam.list_attached_group_policies(GroupName="Ops", PathPrefix="/ssm/")[
        "AttachedPolicies"] == [{"PolicyName": "Start", "PolicyArn": policy["Arn"]}]
    assert iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["AttachmentCount"] == 1
    missing = f"arn:aws:iam::{ACCOUNT}:policy/Nope"
    assert refused(iam.attach_group_policy, GroupName="Ops", PolicyArn=missing) == (
        "NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")
    iam.detach_group_policy(GroupName="Ops", PolicyArn=policy["Arn"])
    assert refused(iam.detach_group_policy, GroupName="Ops", PolicyArn=policy["Arn"]) == (
        "NoSuchEntity", f"Policy {policy['Arn']} was not found.")
    assert iam.list_attached_group_policies(GroupName="Ops")["AttachedPolicies"] == [
        {"PolicyName": "ReadOnlyAccess", "PolicyArn": READ_ONLY}]


def test_a_group_grants_a_session_until_the_user_leaves(server, admin):
    """Group policies count in authorization: joining gives the session, leaving takes it."""
    iam = admin["iam"]
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    keys = user_with_key(iam, server, "TestUserA", [("Project", "test")])
    ssm = server.client("ssm", keys)
    iam.create_group(GroupName="SessionUsers")
    iam.put_group_policy(GroupName="SessionUsers", PolicyName="abac", PolicyDocument=ABAC)

    denied = (
        "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT}:user/TestUserA is not authorized to perform: "
        f"ssm:StartSession on resource: {instance_arn(TEST_NODE)} because no identity-based "
        "policy allows the ssm:StartSession action")
    assert refused(ssm.start_session, Target=TEST_NODE) == denied

    iam.add_user_to_group(GroupName="SessionUsers", UserName="TestUserA")
    started = ssm.start_session(Target=TEST_NODE)
    assert started["SessionId"].startswith("TestUserA-")

    iam.remove_user_from_group(GroupName="SessionUsers", UserName="TestUserA")
    assert refused(ssm.start_session, Target=TEST_NODE) == denied

    # Through an attached managed policy too.
    iam.delete_group_policy(GroupName="SessionUsers", PolicyName="abac")
    arn = iam.create_policy(PolicyName="Start", PolicyDocument=START_ANYWHERE)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="SessionUsers", PolicyArn=arn)
    iam.add_user_to_group(GroupName="SessionUsers", UserName="TestUserA")
    assert ssm.start_session(Target=TEST_NODE)["SessionId"].startswith("TestUserA-")
    iam.detach_group_policy(GroupName="SessionUsers", PolicyArn=arn)
    assert refused(ssm.start_session, Target=TEST_NODE) == denied


def test_group_operations_are_authorized_against_the_group(server, admin):
    iam = admin["iam"]
    keys = user_with_key(iam, server, "bob")
    bob = server.client("iam", keys)
    code, message = refused(bob.add_user_to_group, GroupName="Ops", UserName="bob")
    assert code == "AccessDenied"
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: "
        f"iam:AddUserToGroup on resource: arn:aws:iam::{ACCOUNT}:group/Ops because no "
        "identity-based policy allows the iam:AddUserToGroup action")
    # Allowed on one group only: the other is refused before its existence is looked at.
    iam.put_user_policy(UserName="bob", PolicyName="ops-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*Group*",
                       "Resource": f"arn:aws:iam::{ACCOUNT}:group/Ops"}]}))
    bob.create_group(GroupName="Ops")
    bob.add_user_to_group(GroupName="Ops", UserName="bob")
    assert refused(bob.get_group, GroupName="Admins")[0] == "AccessDenied"
    assert refused(bob.get_group, GroupName="Ops2")[0] == "AccessDenied"
    assert [u["UserName"] for u in bob.get_group(GroupName="Ops")["Users"]] == ["bob"]


# Managed policy versions


def test_policy_versions(admin):
    iam = admin["iam"]
    arn = iam.create_policy(PolicyName="Start", PolicyDocument=START_ANYWHERE)["Policy"]["Arn"]
    created = []
    for n in range(2, 6):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=START_ANYWHERE,
                                      SetAsDefault=(n == 3))["PolicyVersion"]
        assert v["VersionId"] == f"v{n}" and v["IsDefaultVersion"] is (n == 3)
        assert "CreateDate" in v
        created.append(v["VersionId"])
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"

    # A sixth is refused, and leaves nothing behind.
    assert refused(iam.create_policy_version, PolicyArn=arn, PolicyDocument=START_ANYWHERE,
                   SetAsDefault=True) == (
        "LimitExceeded",
        "A managed policy can have up to 5 versions. Before you create a new version, you "
        "must delete an existing version.")
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [
        ("v5", False), ("v4", False), ("v3", True), ("v2", False), ("v1", False)]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"

    # A malformed or oversized version is refused the same way.
    code, _ = refused(iam.create_policy_version, PolicyArn=arn,
                      PolicyDocument='{"Statement":[]}')
    assert code in ("MalformedPolicyDocument", "LimitExceeded")

    # The default version cannot be deleted; a missing one is NoSuchEntity.
    assert refused(iam.delete_policy_version, PolicyArn=arn, VersionId="v3") == (
        "DeleteConflict", "Cannot delete the default version of a policy.")
    assert refused(iam.delete_policy_version, PolicyArn=arn, VersionId="v9") == (
        "NoSuchEntity", f"Policy {arn} version v9 does not exist or is not attachable.")
    assert refused(iam.set_default_policy_version, PolicyArn=arn, VersionId="v9") == (
        "NoSuchEntity", f"Policy {arn} version v9 does not exist or is not attachable.")
    code, message = refused(iam.set_default_policy_version, PolicyArn=arn, VersionId="x1")
    assert code == "ValidationError"
    assert message == (
        "1 validation error detected: Value 'x1' at 'versionId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?")
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 5

    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v1"
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert got["IsDefaultVersion"] is True and got["Document"] == json.loads(START_ANYWHERE)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v5")
    assert refused(iam.get_policy_version, PolicyArn=arn, VersionId="v5") == (
        "NoSuchEntity", f"Policy {arn} version v5 does not exist or is not attachable.")
    # A deleted id is not handed out again.
    assert iam.create_policy_version(PolicyArn=arn, PolicyDocument=START_ANYWHERE)[
        "PolicyVersion"]["VersionId"] == "v6"

    missing = f"arn:aws:iam::{ACCOUNT}:policy/Nope"
    assert refused(iam.create_policy_version, PolicyArn=missing,
                   PolicyDocument=START_ANYWHERE) == (
        "NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")
    assert refused(iam.list_policy_versions, PolicyArn=missing) == (
        "NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")


def test_delete_policy_follows_iams_order(admin):
    iam = admin["iam"]
    arn = iam.create_policy(PolicyName="Start", PolicyDocument=START_ANYWHERE)["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=START_ANYWHERE, SetAsDefault=True)
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="Ops")

    def state():
        p = iam.get_policy(PolicyArn=arn)["Policy"]
        versions = [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]]
        return p["DefaultVersionId"], p["AttachmentCount"], versions

    # Attached (to a user, to a group), or a permissions boundary: refused, nothing changes.
    for attach, detach in (
        (lambda: iam.attach_user_policy(UserName="alice", PolicyArn=arn),
         lambda: iam.detach_user_policy(UserName="alice", PolicyArn=arn)),
        (lambda: iam.attach_group_policy(GroupName="Ops", PolicyArn=arn),
         lambda: iam.detach_group_policy(GroupName="Ops", PolicyArn=arn)),
        (lambda: iam.put_user_permissions_boundary(UserName="alice", PermissionsBoundary=arn),
         lambda: iam.delete_user_permissions_boundary(UserName="alice")),
    ):
        attach()
        before = state()
        assert refused(iam.delete_policy, PolicyArn=arn) == (
            "DeleteConflict", "Cannot delete a policy attached to entities.")
        assert state() == before
        detach()

    # Versions other than the default must go first.
    assert refused(iam.delete_policy, PolicyArn=arn) == (
        "DeleteConflict",
        "This policy has more than one version. Before you delete a policy, you must delete "
        "the policy's versions. The default version is deleted with the policy.")
    assert state() == ("v2", 0, ["v2", "v1"])
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)
    assert refused(iam.get_policy, PolicyArn=arn) == (
        "NoSuchEntity", f"Policy {arn} does not exist or is not attachable.")
    assert refused(iam.delete_policy, PolicyArn=arn) == (
        "NoSuchEntity", f"Policy {arn} was not found.")


def test_the_default_version_is_the_one_in_force(server, admin):
    iam = admin["iam"]
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    register_node(server, admin, PROD_NODE, {"Project": "prod"})
    keys = user_with_key(iam, server, "TestUserA")
    ssm = server.client("ssm", keys)
    only_test = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:StartSession", "Resource": instance_arn(TEST_NODE)}]})
    arn = iam.create_policy(PolicyName="Start", PolicyDocument=only_test)["Policy"]["Arn"]
    iam.attach_user_policy(UserName="TestUserA", PolicyArn=arn)
    ssm.start_session(Target=TEST_NODE)
    assert refused(ssm.start_session, Target=PROD_NODE)[0] == "AccessDeniedException"
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=START_ANYWHERE)
    assert refused(ssm.start_session, Target=PROD_NODE)[0] == "AccessDeniedException"
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v2")
    ssm.start_session(Target=PROD_NODE)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert refused(ssm.start_session, Target=PROD_NODE)[0] == "AccessDeniedException"


def test_aws_managed_policies_cannot_be_changed(admin):
    iam = admin["iam"]

    def denied(action):
        return ("AccessDenied",
                f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: {action} on "
                f"resource: {READ_ONLY} because no resource-based policy allows the {action} "
                "action")

    assert refused(iam.create_policy_version, PolicyArn=READ_ONLY,
                   PolicyDocument=START_ANYWHERE, SetAsDefault=True) == denied(
        "iam:CreatePolicyVersion")
    assert refused(iam.set_default_policy_version, PolicyArn=READ_ONLY, VersionId="v1") == denied(
        "iam:SetDefaultPolicyVersion")
    assert refused(iam.delete_policy_version, PolicyArn=READ_ONLY, VersionId="v1") == denied(
        "iam:DeletePolicyVersion")
    assert refused(iam.delete_policy, PolicyArn=READ_ONLY) == denied("iam:DeletePolicy")
    versions = iam.list_policy_versions(PolicyArn=READ_ONLY)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v1", True)]


# Login profiles


def test_login_profiles(server, admin):
    iam = admin["iam"]
    iam.create_user(UserName="alice")
    password = "Correct-Horse-Battery-42"

    assert refused(iam.create_login_profile, UserName="alice", Password="Sh0rt!") == (
        "PasswordPolicyViolation", "Password should have a minimum length of 8")
    assert refused(iam.get_login_profile, UserName="alice") == (
        "NoSuchEntity", "Login Profile for User alice cannot be found.")
    assert refused(iam.create_login_profile, UserName="nobody", Password=password) == (
        "NoSuchEntity", "The user with name nobody cannot be found.")

    profile = iam.create_login_profile(UserName="alice", Password=password,
                                       PasswordResetRequired=True)["LoginProfile"]
    assert profile["UserName"] == "alice" and profile["PasswordResetRequired"] is True
    got = iam.get_login_profile(UserName="alice")["LoginProfile"]
    assert got == profile
    assert refused(iam.create_login_profile, UserName="alice", Password="another-password") == (
        "EntityAlreadyExists", "Login Profile for user alice already exists.")
    assert iam.get_login_profile(UserName="alice")["LoginProfile"] == profile

    # Only a hash is kept: the password is nowhere in the database files.
    for f in server.data_dir.glob("portcullis.db*"):
        assert password.encode() not in f.read_bytes(), f

    iam.update_login_profile(UserName="alice", PasswordResetRequired=False)
    assert iam.get_login_profile(UserName="alice")["LoginProfile"]["PasswordResetRequired"] is False
    assert refused(iam.update_login_profile, UserName="alice", Password="tiny") == (
        "PasswordPolicyViolation", "Password should have a minimum length of 8")
    iam.update_login_profile(UserName="alice", Password="Another-Long-Password-7",
                             PasswordResetRequired=True)
    after = iam.get_login_profile(UserName="alice")["LoginProfile"]
    assert after["PasswordResetRequired"] is True and after["CreateDate"] == profile["CreateDate"]

    # DeleteUser waits for the login profile.
    assert refused(iam.delete_user, UserName="alice") == (
        "DeleteConflict", "Cannot delete entity, must delete login profile first.")
    assert iam.get_login_profile(UserName="alice")["LoginProfile"]["UserName"] == "alice"
    iam.delete_login_profile(UserName="alice")
    assert refused(iam.get_login_profile, UserName="alice") == (
        "NoSuchEntity", "Login Profile for User alice cannot be found.")
    assert refused(iam.delete_login_profile, UserName="alice") == (
        "NoSuchEntity", "Login Profile for User alice cannot be found.")
    assert refused(iam.update_login_profile, UserName="alice", Password=password) == (
        "NoSuchEntity", "Login Profile for User alice cannot be found.")
    iam.delete_user(UserName="alice")


def test_a_user_manages_their_own_login_profile(server, admin):
    iam = admin["iam"]
    keys = user_with_key(iam, server, "alice")
    iam.put_user_policy(UserName="alice", PolicyName="self", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*LoginProfile",
                       "Resource": "arn:aws:iam::*:user/${aws:username}"}]}))
    alice = server.client("iam", keys)
    assert alice.create_login_profile(Password="my-own-password")["LoginProfile"][
        "UserName"] == "alice"
    assert alice.get_login_profile()["LoginProfile"]["UserName"] == "alice"
    iam.create_user(UserName="bob")
    assert refused(alice.create_login_profile, UserName="bob", Password="not-mine-123")[0] == (
        "AccessDenied")
    assert refused(iam.get_login_profile, UserName="bob")[0] == "NoSuchEntity"
    alice.delete_login_profile()
    assert refused(iam.get_login_profile, UserName="alice")[0] == "NoSuchEntity"


# Users and keys: the store's atomic checks, seen from outside


def test_delete_user_and_key_quota(server, admin):
    iam = admin["iam"]
    iam.create_user(UserName="alice")
    k1 = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    k2 = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    assert refused(iam.create_access_key, UserName="alice") == (
        "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    assert {k["AccessKeyId"] for k in iam.list_access_keys(UserName="alice")[
        "AccessKeyMetadata"]} == {k1, k2}

    assert refused(iam.delete_user, UserName="alice") == (
        "DeleteConflict", "Cannot delete entity, must delete access keys first.")
    for k in (k1, k2):
        iam.delete_access_key(UserName="alice", AccessKeyId=k)
    iam.attach_user_policy(UserName="alice", PolicyArn=READ_ONLY)
    assert refused(iam.delete_user, UserName="alice") == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam.detach_user_policy(UserName="alice", PolicyArn=READ_ONLY)
    iam.put_user_policy(UserName="alice", PolicyName="p", PolicyDocument=START_ANYWHERE)
    assert refused(iam.delete_user, UserName="alice") == (
        "DeleteConflict", "Cannot delete entity, must delete policies first.")
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["p"]
    iam.delete_user_policy(UserName="alice", PolicyName="p")
    iam.delete_user(UserName="alice")
    assert refused(iam.get_user, UserName="alice")[0] == "NoSuchEntity"


# The simulator


def test_simulate_principal_policy(server, admin):
    iam = admin["iam"]
    register_node(server, admin, TEST_NODE, {"Project": "test"})
    register_node(server, admin, PROD_NODE, {"Project": "prod"})
    iam.create_user(UserName="TestUserA", Tags=[{"Key": "Project", "Value": "test"}])
    iam.create_group(GroupName="SessionUsers")
    iam.put_group_policy(GroupName="SessionUsers", PolicyName="abac", PolicyDocument=ABAC)
    iam.add_user_to_group(GroupName="SessionUsers", UserName="TestUserA")
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/TestUserA"

    out = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["ssm:StartSession"],
        ResourceArns=[instance_arn(TEST_NODE), instance_arn(PROD_NODE)])
    assert out["IsTruncated"] is False
    [result] = out["EvaluationResults"]
    assert result["EvalActionName"] == "ssm:StartSession"
    assert result["EvalResourceName"] == "*"
    assert result["EvalDecision"] == "implicitDeny"   # the most restrictive of the two
    assert result["MatchedStatements"] == []
    assert result["MissingContextValues"] == []
    assert result["EvalDecisionDetails"] == {}
    test, prod = result["ResourceSpecificResults"]
    assert test["EvalResourceName"] == instance_arn(TEST_NODE)
    assert test["EvalResourceDecision"] == "allowed"
    assert test["MatchedStatements"] == [{
        "SourcePolicyId": "group SessionUsers inline policy abac",
        "SourcePolicyType": "IAM Policy",
        "StartPosition": {"Line": 4, "Column": 6},
        "EndPosition": {"Line": 10, "Column": 6},
    }]
    assert test["MissingContextValues"] == []
    assert prod["EvalResourceName"] == instance_arn(PROD_NODE)
    assert prod["EvalResourceDecision"] == "implicitDeny"
    assert prod["MatchedStatements"] == []

    # Only the test node: allowed, and the top level carries its statement.
    [result] = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["ssm:StartSession", "ssm:TerminateSession"],
        ResourceArns=[instance_arn(TEST_NODE)])["EvaluationResults"][:1]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "group SessionUsers inline policy abac"

    # Context entries stand in for tags; a resource no node has carries none.
    [result] = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["ssm:StartSession"],
        ResourceArns=[instance_arn(PROD_NODE)],
        ContextEntries=[{"ContextKeyName": "aws:PrincipalTag/Project",
                         "ContextKeyValues": ["prod"], "ContextKeyType": "string"}],
        CallerArn=f"arn:aws:iam::{ACCOUNT}:user/Ignored")["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    [result] = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["ssm:StartSession"],
        ResourceArns=[instance_arn("i-0fffffffffffffff0")])["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MissingContextValues"] == ["aws:ResourceTag/Project"]
    assert result["ResourceSpecificResults"][0]["MissingContextValues"] == [
        "aws:ResourceTag/Project"]

    # An extra policy and a boundary given in the request.
    [result] = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["ssm:StartSession"],
        PolicyInputList=[START_ANYWHERE],
        PermissionsBoundaryPolicyInputList=[START_ANYWHERE])["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["EvalResourceName"] == "*"
    assert "ResourceSpecificResults" not in result
    assert result["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    ids = [s["SourcePolicyId"] for s in result["MatchedStatements"]]
    assert "PolicyInputList.1" in ids

    # Simulation reads, never writes: the group and the user are as they were.
    assert iam.list_group_policies(GroupName="SessionUsers")["PolicyNames"] == ["abac"]
    assert iam.list_user_policies(UserName="TestUserA")["PolicyNames"] == []

    missing = f"arn:aws:iam::{ACCOUNT}:user/nobody"
    assert refused(iam.simulate_principal_policy, PolicySourceArn=missing,
                   ActionNames=["ssm:StartSession"]) == (
        "NoSuchEntity", "The user with name nobody cannot be found.")
    code, message = refused(iam.simulate_principal_policy, PolicySourceArn=user_arn,
                            ActionNames=["ssm:StartSession"],
                            ContextEntries=[{"ContextKeyName": "aws:SourceIp",
                                             "ContextKeyValues": ["10.0.0.1"],
                                             "ContextKeyType": "ip"}],
                            PermissionsBoundaryPolicyInputList=[START_ANYWHERE, START_ANYWHERE])
    assert code == "InvalidInput"


def test_simulate_custom_policy(admin):
    iam = admin["iam"]
    doc = ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:*",'
           '"Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}')
    out = iam.simulate_custom_policy(PolicyInputList=[doc],
                                     ActionNames=["ssm:StartSession", "ec2:DescribeInstances"])
    start, describe = out["EvaluationResults"]
    assert start["EvalDecision"] == "implicitDeny"
    assert start["MissingContextValues"] == ["aws:SourceIp"]
    assert describe["EvalDecision"] == "implicitDeny"
    assert describe["MissingContextValues"] == [], "the statement is not about ec2"

    [result] = iam.simulate_custom_policy(
        PolicyInputList=[doc], ActionNames=["ssm:StartSession"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["203.0.113.7"],
                         "ContextKeyType": "ip"}])["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    # Positions as IAM gives them: just after the statement's braces.
    assert result["MatchedStatements"] == [{
        "SourcePolicyId": "PolicyInputList.1",
        "StartPosition": {"Line": 1, "Column": 38},
        "EndPosition": {"Line": 1, "Column": 147},
    }]
    assert result["MissingContextValues"] == []

    # An explicit deny in a second policy wins, and is the only statement reported.
    deny = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoProd", "Effect": "Deny", "Action": "ssm:StartSession",
         "Resource": instance_arn(PROD_NODE)}]})
    [result] = iam.simulate_custom_policy(
        PolicyInputList=[START_ANYWHERE, deny], ActionNames=["ssm:StartSession"],
        ResourceArns=[instance_arn(TEST_NODE), instance_arn(PROD_NODE)])["EvaluationResults"]
    assert result["EvalDecision"] == "explicitDeny"
    assert [s["SourcePolicyId"] for s in result["MatchedStatements"]] == ["PolicyInputList.2"]
    decisions = [(r["EvalResourceName"], r["EvalResourceDecision"])
                 for r in result["ResourceSpecificResults"]]
    assert decisions == [(instance_arn(TEST_NODE), "allowed"),
                         (instance_arn(PROD_NODE), "explicitDeny")]
    assert [s["SourcePolicyId"] for s in result["ResourceSpecificResults"][0][
        "MatchedStatements"]] == ["PolicyInputList.1"]

    # A boundary that does not allow the action.
    [result] = iam.simulate_custom_policy(
        PolicyInputList=[START_ANYWHERE], ActionNames=["ssm:StartSession"],
        PermissionsBoundaryPolicyInputList=[json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ssm:Describe*", "Resource": "*"}]})])[
        "EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}

    # Refusals: a malformed policy, a bad context type.
    code, message = refused(iam.simulate_custom_policy, ActionNames=["ssm:StartSession"],
                            PolicyInputList=['{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"StartSession","Resource":"*"}}'])
    assert code == "MalformedPolicyDocument"
    assert "Actions/Conditions must be prefaced by a vendor" in message


def test_simulation_is_authorized(server, admin):
    iam = admin["iam"]
    keys = user_with_key(iam, server, "bob")
    bob = server.client("iam", keys)
    code, message = refused(bob.simulate_custom_policy, PolicyInputList=[START_ANYWHERE],
                            ActionNames=["ssm:StartSession"])
    assert code == "AccessDenied"
    assert "iam:SimulateCustomPolicy on resource: *" in message
    target = f"arn:aws:iam::{ACCOUNT}:user/nobody"
    code, message = refused(bob.simulate_principal_policy, PolicySourceArn=target,
                            ActionNames=["ssm:StartSession"])
    assert code == "AccessDenied", "refused before the user is looked up"
    assert f"iam:SimulatePrincipalPolicy on resource: {target}" in message
    # ReadOnlyAccess includes iam:Simulate*.
    iam.attach_user_policy(UserName="bob", PolicyArn=READ_ONLY)
    [result] = bob.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        ActionNames=["iam:DeleteUser", "ssm:DescribeSessions"])["EvaluationResults"][1:]
    assert result["EvalActionName"] == "ssm:DescribeSessions"
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == READ_ONLY
