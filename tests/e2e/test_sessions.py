"""Shell sessions end to end with the real binaries: server, agent (a real PTY shell) and
clients we did not write (the AWS CLI driving `session-manager-plugin`, which is our binary
under that name) as well as `portcullis session`."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pexpect
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, BIN, REGION, ROOT, Server, self_signed_cert

TEST_NODE = "i-0885b2e35926f1fb3"
PROD_NODE = "i-0123456789abcdef0"


class Agent:
    """`portcullis agent register` then `portcullis agent run`, in a temp state dir."""

    def __init__(self, server, admin, instance_id, state_dir, tags=None, register_args=()):
        act = admin["ssm"].create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
        subprocess.run(
            [str(BIN), "agent", "register", "--server", server.endpoint, "--code", act["ActivationCode"],
             "--id", act["ActivationId"], "--instance-id", instance_id, "--state-dir", str(state_dir),
             *register_args],
            check=True, capture_output=True, text=True, timeout=30)
        reg = json.loads((state_dir / "registration.json").read_text())
        self.node_id = reg.get("node_id") or reg.get("NodeId")
        assert self.node_id == instance_id
        if tags:
            admin["ec2"].create_tags(Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        self.proc = subprocess.Popen([str(BIN), "agent", "run", "--state-dir", str(state_dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "RUST_LOG": "warn"})
        ssm = admin["ssm"]
        deadline = time.time() + 20
        while time.time() < deadline:
            if ssm.get_connection_status(Target=instance_id)["Status"] == "connected":
                return
            time.sleep(0.2)
        raise RuntimeError("the agent did not connect: " + (self.proc.stderr.read() if self.proc.poll() is not None else ""))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def profile_env(server, tmp_path, keys, name="user"):
    """An AWS config dir with one profile for `keys`, pointing at the server."""
    creds, config = tmp_path / f"{name}-credentials", tmp_path / f"{name}-config"
    creds.write_text(f"[{name}]\naws_access_key_id = {keys[0]}\naws_secret_access_key = {keys[1]}\n")
    config.write_text(f"[profile {name}]\nregion = {REGION}\nendpoint_url = {server.endpoint}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_CONFIG_FILE=str(config), AWS_PROFILE=name)
    return env


@pytest.fixture
def plugin_dir(tmp_path):
    """A PATH entry where `session-manager-plugin` is our binary."""
    d = tmp_path / "bin"
    d.mkdir()
    (d / "session-manager-plugin").symlink_to(BIN.resolve())
    return d


@pytest.fixture
def fleet(server, admin, tmp_path):
    agents = [Agent(server, admin, TEST_NODE, tmp_path / "agent-test", {"Project": "test"}),
              Agent(server, admin, PROD_NODE, tmp_path / "agent-prod", {"Project": "prod"})]
    yield agents
    for a in agents:
        a.stop()


def user(admin, name, policy):
    iam = admin["iam"]
    iam.create_user(UserName=name, Tags=[{"Key": "Project", "Value": "test"}])
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    doc = (ROOT / "examples" / "seed" / f"{policy}.json").read_text()
    iam.put_user_policy(UserName=name, PolicyName=policy, PolicyDocument=doc)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_portcullis_session_runs_commands_and_exits(server, admin, fleet, tmp_path):
    keys = user(admin, "TestUserA", "pattern-3-abac")
    env = profile_env(server, tmp_path, keys)
    out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                         input="echo hello-$((6*7))\nexit 3\n", capture_output=True, text=True, env=env, timeout=60)
    assert "hello-42" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 3
    history = admin["ssm"].describe_sessions(State="History")["Sessions"]
    assert [s["Status"] for s in history] == ["Terminated"]
    assert history[0]["SessionId"].startswith("TestUserA-")


def test_session_log_keeps_what_the_terminal_showed(server, admin, fleet, tmp_path):
    """The server logs each session's output (mode 0600, in a 0700 directory);
    `portcullis audit session-log` prints it; a name that is not a session id is refused."""
    keys = user(admin, "TestUserA", "pattern-3-abac")
    env = profile_env(server, tmp_path, keys)
    out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                         input="echo logged-$((6*7))\nexit\n", capture_output=True, text=True, env=env, timeout=60)
    assert "logged-42" in out.stdout, out.stdout + out.stderr
    session = admin["ssm"].describe_sessions(State="History")["Sessions"][0]["SessionId"]
    audit = [str(BIN), "audit", "session-log", "--data-dir", str(server.data_dir)]
    deadline = time.time() + 10
    while True:
        log = subprocess.run([*audit, session], capture_output=True, text=True, timeout=30)
        if "logged-42" in log.stdout or time.time() > deadline:
            break
        time.sleep(0.1)
    assert log.returncode == 0, log.stderr
    # The typed command as the shell echoed it, then its output, once.
    assert "echo logged-$((6*7))" in log.stdout
    assert log.stdout.count("logged-42") == 1, log.stdout
    logs = server.data_dir / "session-logs"
    assert logs.stat().st_mode & 0o777 == 0o700
    assert (logs / f"{session}.log").stat().st_mode & 0o777 == 0o600
    refused = subprocess.run([*audit, "../portcullis.db"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "not a session id" in refused.stderr
    missing = subprocess.run([*audit, "TestUserA-0000"], capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "no log for session TestUserA-0000" in missing.stderr
    # Switched off: no directory, nothing written.
    quiet = Server(tmp_path / "quiet", extra=("--no-session-logs",)).start()
    try:
        assert (tmp_path / "quiet" / "portcullis.db").exists()
        assert not (tmp_path / "quiet" / "session-logs").exists()
    finally:
        quiet.stop()


def test_session_log_follow_watches_a_live_session(server, admin, fleet, tmp_path):
    """`portcullis audit session-log --follow ID` prints a live session's output as it comes
    and exits when the session ends."""
    env = profile_env(server, tmp_path, user(admin, "TestUserA", "pattern-3-abac"))
    child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                          encoding="utf-8", timeout=30)
    child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
    session = child.match.group(1)
    child.sendline("echo first-$((1+1))")
    child.expect("first-2")
    watcher = pexpect.spawn(str(BIN), ["audit", "session-log", "--follow", "--data-dir", str(server.data_dir),
                                       session], encoding="utf-8", timeout=30)
    watcher.expect("first-2")  # what was logged before it started
    child.sendline("echo then-$((2+2))")
    watcher.expect("then-4")  # and what comes after, live
    child.sendline("exit")
    child.expect(pexpect.EOF)
    watcher.expect(pexpect.EOF)  # the session ended: so does the watcher
    watcher.close()
    assert watcher.exitstatus == 0
    missing = subprocess.run([str(BIN), "audit", "session-log", "--follow", "--data-dir", str(server.data_dir),
                              "TestUserA-00000000000000000"], capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "no session TestUserA-00000000000000000" in missing.stderr


LOG_GROUP = "/portcullis/sessions"
OWN_SESSION_LOGS = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": "logs:GetLogEvents",
        "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:log-stream:${{aws:username}}-*",
    }],
}


def session_logged(logs, session, text):
    """Waits until `session`'s log stream shows `text` (the writer gathers for 50 ms)."""
    deadline = time.time() + 10
    while True:
        try:
            got = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=session, startFromHead=True)
            if text in "".join(e["message"] for e in got["events"]) or time.time() > deadline:
                return got
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException" or time.time() > deadline:
                raise
        time.sleep(0.1)


def test_session_logs_through_the_cloudwatch_logs_api(server, admin, fleet, tmp_path):
    """boto3 and the AWS CLI read session logs as CloudWatch Logs streams; an IAM policy on
    the log-stream ARN lets a user read their own sessions and not another's."""
    sessions = {}
    for name in ("TestUserA", "TestUserB"):
        keys = user(admin, name, "pattern-3-abac")
        admin["iam"].put_user_policy(UserName=name, PolicyName="own-session-logs",
                                     PolicyDocument=json.dumps(OWN_SESSION_LOGS))
        env = profile_env(server, tmp_path, keys, name=name)
        out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                             input=f"echo said-by-{name}-$((6*7))\nexit\n", capture_output=True, text=True,
                             env=env, timeout=60)
        assert f"said-by-{name}-42" in out.stdout, out.stdout + out.stderr
        sessions[name] = (keys, out.stdout.split("SessionId: ")[1].split()[0].rstrip("."))
    root_logs = server.client("logs", server.admin_keys())
    for name, (_, session) in sessions.items():
        got = session_logged(root_logs, session, f"said-by-{name}-42")
        text = "".join(e["message"] for e in got["events"])
        assert text.count(f"said-by-{name}-42") == 1, text
        assert all(e["timestamp"] <= e["ingestionTime"] for e in got["events"])
        assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")
        # Read on from the end: nothing new, the same token back (where pagination stops).
        more = root_logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=session,
                                        nextToken=got["nextForwardToken"])
        assert more["events"] == [] and more["nextForwardToken"] == got["nextForwardToken"]

    groups = root_logs.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [LOG_GROUP]
    assert groups[0]["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*"
    streams = root_logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == sorted(v[1] for v in sessions.values())
    first = root_logs.describe_log_streams(logGroupName=LOG_GROUP, limit=1)
    assert len(first["logStreams"]) == 1 and "nextToken" in first
    rest = root_logs.describe_log_streams(logGroupName=LOG_GROUP, nextToken=first["nextToken"])
    assert len(rest["logStreams"]) == 1 and "nextToken" not in rest
    latest = root_logs.describe_log_streams(logGroupName=LOG_GROUP, orderBy="LastEventTime", descending=True)
    assert latest["logStreams"][0]["logStreamName"] == sessions["TestUserB"][1]  # B ran last
    # A time range: none of it is in the future; all of it is since the epoch.
    now_ms = int(time.time() * 1000)
    b_stream = sessions["TestUserB"][1]
    assert root_logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=b_stream,
                                    startTime=now_ms + 60_000, startFromHead=True)["events"] == []
    assert root_logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=b_stream,
                                    startTime=0, endTime=now_ms + 60_000, startFromHead=True)["events"]
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"
    by_arn = root_logs.get_log_events(logGroupIdentifier=arn, logStreamName=b_stream, startFromHead=True)
    assert "said-by-TestUserB-42" in "".join(e["message"] for e in by_arn["events"])
    with pytest.raises(ClientError) as missing_group:
        root_logs.get_log_events(logGroupName="/other/group", logStreamName=b_stream)
    assert missing_group.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # Across sessions: a filter pattern, through boto3 and the AWS CLI.
    hits = root_logs.filter_log_events(logGroupName=LOG_GROUP, filterPattern='"said-by-" -TestUserA')
    assert {e["logStreamName"] for e in hits["events"]} == {sessions["TestUserB"][1]}, hits
    assert "said-by-TestUserB-42" in "".join(e["message"] for e in hits["events"])
    # One event a page, token after token: the same events, in time order, each once.
    everything = root_logs.filter_log_events(logGroupName=LOG_GROUP)["events"]
    paged, token = [], None
    while True:
        page = root_logs.filter_log_events(logGroupName=LOG_GROUP, limit=1,
                                           **({"nextToken": token} if token else {}))
        paged += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    assert [e["eventId"] for e in paged] == [e["eventId"] for e in everything]
    assert len({e["eventId"] for e in paged}) == len(paged) > 2
    assert [e["timestamp"] for e in paged] == sorted(e["timestamp"] for e in paged)
    admin_env = {**profile_env(server, tmp_path, server.admin_keys(), name="admin"),
                 "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    found = subprocess.run(["aws", "logs", "filter-log-events", "--log-group-name", LOG_GROUP,
                            "--filter-pattern", "said-by", "--output", "json"],
                           capture_output=True, text=True, env=admin_env, timeout=60)
    assert found.returncode == 0, found.stderr
    text = "".join(e["message"] for e in json.loads(found.stdout)["events"])
    assert "said-by-TestUserA-42" in text and "said-by-TestUserB-42" in text, text

    keys_a, own = sessions["TestUserA"]
    _, other = sessions["TestUserB"]
    logs_a = server.client("logs", keys_a)
    # ReadOnlyAccess reads every session's log, as on AWS (it allows logs:Get*)...
    assert "said-by-TestUserB-42" in "".join(e["message"] for e in logs_a.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=other, startFromHead=True)["events"])
    # ...so without it, the policy on the log-stream ARN is what decides.
    admin["iam"].detach_user_policy(UserName="TestUserA", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    text = "".join(e["message"] for e in logs_a.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=own, startFromHead=True)["events"])
    assert "said-by-TestUserA" in text and "said-by-TestUserB" not in text
    with pytest.raises(ClientError) as refused:
        logs_a.get_log_events(logGroupName=LOG_GROUP, logStreamName=other)
    err = refused.value.response["Error"]
    assert err["Code"] == "AccessDeniedException"
    assert (f"User: arn:aws:iam::{ACCOUNT}:user/TestUserA is not authorized to perform: logs:GetLogEvents "
            f"on resource: arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:log-stream:{other}") in err["Message"]
    with pytest.raises(ClientError) as refused:
        logs_a.describe_log_streams(logGroupName=LOG_GROUP)
    assert f"log-group:{LOG_GROUP}:log-stream: because" in refused.value.response["Error"]["Message"]
    # Authorized before looked up: a stream that does not exist is refused the same way...
    with pytest.raises(ClientError) as refused:
        logs_a.get_log_events(logGroupName=LOG_GROUP, logStreamName="TestUserB-00000000000000000")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    # ...and one the caller may read but that does not exist is not found.
    with pytest.raises(ClientError) as missing:
        logs_a.get_log_events(logGroupName=LOG_GROUP, logStreamName="TestUserA-00000000000000000")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as bad:
        root_logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=own, nextToken="x/1")
    assert bad.value.response["Error"]["Code"] == "InvalidParameterException"

    # The stock AWS CLI.
    env = profile_env(server, tmp_path, keys_a, name="TestUserA")
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    cli = subprocess.run(["aws", "logs", "get-log-events", "--log-group-name", LOG_GROUP,
                          "--log-stream-name", own, "--start-from-head", "--output", "json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "said-by-TestUserA" in "".join(e["message"] for e in json.loads(cli.stdout)["events"])


def test_aws_cli_start_session_with_the_plugin(server, admin, fleet, tmp_path, plugin_dir):
    """`aws ssm start-session` finds `session-manager-plugin` on PATH (ours), gets a terminal,
    runs a command, and exits with AWS's closing line."""
    keys = user(admin, "TestUserA", "pattern-1-arn")
    env = profile_env(server, tmp_path, keys)
    env["PATH"] = f"{plugin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    child = pexpect.spawn("aws", ["ssm", "start-session", "--target", TEST_NODE], env=env,
                          encoding="utf-8", timeout=30, dimensions=(24, 80))
    child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
    session_id = child.match.group(1)
    child.sendline("echo ok-$((20+3))")
    child.expect("ok-23")
    child.sendline("stty size")
    child.expect(r"24 80")
    child.sendline("exit")
    child.expect(f"Exiting session with sessionId: {session_id}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = admin["ssm"].describe_sessions(State="History")["Sessions"]
    assert [(s["SessionId"], s["Status"]) for s in history] == [(session_id, "Terminated")]


def test_aws_cli_refusal_names_user_action_and_resource(server, admin, fleet, tmp_path, plugin_dir):
    keys = user(admin, "TestUserA", "pattern-1-arn")
    env = profile_env(server, tmp_path, keys)
    env["PATH"] = f"{plugin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    out = subprocess.run(["aws", "ssm", "start-session", "--target", PROD_NODE], capture_output=True,
                         text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode != 0
    assert ("An error occurred (AccessDeniedException) when calling the StartSession operation: "
            f"User: arn:aws:iam::{ACCOUNT}:user/TestUserA is not authorized to perform: ssm:StartSession "
            f"on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{PROD_NODE} because no identity-based "
            "policy allows the ssm:StartSession action") in out.stderr


def shell_pid(child):
    child.sendline("echo PID=$$")
    child.expect(r"PID=(\d+)")
    return int(child.match.group(1))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.parametrize("pattern", ["pattern-1-arn", "pattern-2-fixed-tag", "pattern-3-abac"])
def test_seed_with_a_real_shell(server, admin, fleet, tmp_path, pattern):
    """Under each pattern: a working shell on the allowed node, AccessDeniedException on the
    other; TestUserA ends their own live session (its shell is gone) and is refused on
    another user's, which keeps running."""
    a_keys = user(admin, "TestUserA", pattern)
    b_keys = user(admin, "TestUserB", pattern)
    env_a = profile_env(server, tmp_path, a_keys, "a")
    env_b = profile_env(server, tmp_path, b_keys, "b")

    with pytest.raises(ClientError) as err:
        server.client("ssm", a_keys).start_session(Target=PROD_NODE)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"

    a = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env_a, encoding="utf-8", timeout=30)
    b = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env_b, encoding="utf-8", timeout=30)
    a_pid, b_pid = shell_pid(a), shell_pid(b)
    active = server.client("ssm", a_keys).describe_sessions(State="Active")["Sessions"]
    ids = {s["Owner"].rsplit("/", 1)[1]: s["SessionId"] for s in active}

    with pytest.raises(ClientError) as err:
        server.client("ssm", a_keys).terminate_session(SessionId=ids["TestUserB"])
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert alive(b_pid)
    b.sendline("echo still-$((1+1))")
    b.expect("still-2")

    server.client("ssm", a_keys).terminate_session(SessionId=ids["TestUserA"])
    a.expect(f"Exiting session with sessionId: {ids['TestUserA']}")
    a.expect(pexpect.EOF)
    deadline = time.time() + 10
    while alive(a_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(a_pid)
    b.sendline("exit")
    b.expect(pexpect.EOF)


# --- Faults ------------------------------------------------------------------------------

def wait_until(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def history(server):
    ssm = server.client("ssm", server.admin_keys())
    return {s["SessionId"]: s["Status"] for s in ssm.describe_sessions(State="History")["Sessions"]}


def test_session_limits_max_duration_and_idle_timeout(tmp_path):
    """`--max-session-seconds`: a session in use is terminated when it has lasted that long
    (shell killed, client told, Terminated). `--idle-session-seconds`: a session whose
    client went away is terminated after that long."""
    server = Server(tmp_path / "data", extra=["--max-session-seconds", "4", "--idle-session-seconds", "2"]).start()
    agent = None
    try:
        keys = server.admin_keys()
        admin = {svc: server.client(svc, keys) for svc in ("iam", "ec2", "ssm")}
        agent = Agent(server, admin, TEST_NODE, tmp_path / "agent", {"Project": "test"})
        env = profile_env(server, tmp_path, user(admin, "TestUserA", "pattern-3-abac"))

        started = time.time()
        child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                              encoding="utf-8", timeout=30)
        child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
        busy = child.match.group(1)
        pid = shell_pid(child)
        child.sendline("while :; do echo tick; sleep 0.5; done")  # in use to the end
        child.expect("tick")
        child.expect(pexpect.EOF, timeout=30)
        lasted = time.time() - started
        child.close()
        assert 4 <= lasted < 15, lasted
        assert history(server)[busy] == "Terminated"
        wait_until("the shell to be killed", lambda: not alive(pid), timeout=10)

        # A client that goes away: Disconnected, then Terminated after the idle timeout (well
        # before the maximum duration).
        child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                              encoding="utf-8", timeout=30)
        child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
        idle = child.match.group(1)
        pid = shell_pid(child)
        child.kill(signal.SIGKILL)
        child.close()
        ssm = admin["ssm"]
        wait_until("Disconnected", lambda: any(
            s["SessionId"] == idle and s["Status"] == "Disconnected"
            for s in ssm.describe_sessions(State="Active")["Sessions"]), timeout=10)
        wait_until("Terminated", lambda: history(server).get(idle) == "Terminated", timeout=10)
        wait_until("the shell to be killed", lambda: not alive(pid), timeout=10)
    finally:
        if agent:
            agent.stop()
        server.stop()


def test_agent_killed_mid_session(tmp_path):
    """SIGKILL the agent under a live session: after the server's agent grace period the
    session ends, the client is told and exits non-zero, the status is Terminated, and the
    shell is gone. The agent, started again, serves new sessions."""
    server = Server(tmp_path / "data", extra=["--agent-grace-seconds", "2"]).start()
    agent = None
    try:
        keys = server.admin_keys()
        admin = {svc: server.client(svc, keys) for svc in ("iam", "ec2", "ssm")}
        agent = Agent(server, admin, TEST_NODE, tmp_path / "agent", {"Project": "test"})
        keys_a = user(admin, "TestUserA", "pattern-3-abac")
        env = profile_env(server, tmp_path, keys_a)
        child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                              encoding="utf-8", timeout=30)
        child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
        session_id = child.match.group(1)
        pid = shell_pid(child)

        killed = time.time()
        agent.proc.kill()
        agent.proc.wait(timeout=10)
        child.expect(pexpect.EOF, timeout=30)
        told = time.time() - killed
        child.close()
        assert child.exitstatus not in (0, None), child.before
        assert f"Lost the connection to session {session_id}" in child.before, child.before
        assert "has ended and cannot be resumed" in child.before, child.before
        # Not before the grace period, not long after it.
        assert 2 <= told < 15, told
        assert history(server) == {session_id: "Terminated"}
        wait_until("the orphaned shell to exit", lambda: not alive(pid), timeout=10)

        # The node is offline until its agent comes back (its last heartbeat is older than
        # its control channel's end), then serves again.
        ssm = admin["ssm"]
        assert ssm.get_connection_status(Target=TEST_NODE)["Status"] == "notconnected"
        with pytest.raises(ClientError) as err:
            server.client("ssm", keys_a).start_session(Target=TEST_NODE)
        assert err.value.response["Error"]["Code"] == "TargetNotConnected"
        agent.proc = subprocess.Popen([str(BIN), "agent", "run", "--state-dir", str(tmp_path / "agent")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "RUST_LOG": "warn"})
        wait_until("the agent to reconnect",
                   lambda: ssm.get_connection_status(Target=TEST_NODE)["Status"] == "connected")
        out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                             input="echo back-$((2+3))\nexit\n", capture_output=True, text=True, env=env,
                             timeout=60)
        assert "back-5" in out.stdout, out.stdout + out.stderr
        assert out.returncode == 0
    finally:
        if agent:
            agent.stop()
        server.stop()


def test_agent_restarted_within_grace(tmp_path):
    """SIGKILL the agent under a live session and start it again at once, well within the
    server's 60 s agent grace period: the new agent reports that it does not have the
    session, so the server ends it now (Terminated, client told) instead of a minute later."""
    server = Server(tmp_path / "data", extra=["--agent-grace-seconds", "60"]).start()
    agent = None
    try:
        keys = server.admin_keys()
        admin = {svc: server.client(svc, keys) for svc in ("iam", "ec2", "ssm")}
        agent = Agent(server, admin, TEST_NODE, tmp_path / "agent", {"Project": "test"})
        env = profile_env(server, tmp_path, user(admin, "TestUserA", "pattern-3-abac"))
        child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                              encoding="utf-8", timeout=30)
        child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
        session_id = child.match.group(1)
        pid = shell_pid(child)

        killed = time.time()
        agent.proc.kill()
        agent.proc.wait(timeout=10)
        agent.proc = subprocess.Popen([str(BIN), "agent", "run", "--state-dir", str(tmp_path / "agent")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "RUST_LOG": "warn"})
        child.expect(pexpect.EOF, timeout=30)
        told = time.time() - killed
        child.close()
        assert child.exitstatus not in (0, None), child.before
        assert "has ended and cannot be resumed" in child.before, child.before
        assert told < 20, told
        assert history(server) == {session_id: "Terminated"}
        wait_until("the orphaned shell to exit", lambda: not alive(pid), timeout=10)
    finally:
        if agent:
            agent.stop()
        server.stop()


def test_server_killed_and_restarted(server, admin, tmp_path):
    """SIGKILL the server under a live session and start it again on the same port: a session
    started at once works (the agent, reconnecting on its own, is sent it), the History keeps
    every session (the one that was live is Terminated), the live session's client is told,
    and its shell is ended."""
    agent = Agent(server, admin, TEST_NODE, tmp_path / "agent", {"Project": "test"})
    try:
        env = profile_env(server, tmp_path, user(admin, "TestUserA", "pattern-3-abac"))
        done = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                              input="echo one-$((0+1))\nexit\n", capture_output=True, text=True, env=env,
                              timeout=60)
        assert "one-1" in done.stdout, done.stdout + done.stderr
        [finished] = history(server)

        child = pexpect.spawn(str(BIN), ["session", "start", "--target", TEST_NODE], env=env,
                              encoding="utf-8", timeout=30)
        child.expect(r"Starting session with SessionId: (TestUserA-[0-9a-f]{17})")
        live = child.match.group(1)
        pid = shell_pid(child)

        server.stop(signal.SIGKILL)
        server.start()

        # At once, while the agent is still redialling: the session reaches it when it is back.
        again = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                               input="echo two-$((1+1))\nexit\n", capture_output=True, text=True, env=env,
                               timeout=60)
        assert "two-2" in again.stdout, again.stdout + again.stderr
        assert again.returncode == 0
        assert agent.proc.poll() is None

        child.expect(pexpect.EOF, timeout=30)
        child.close()
        assert child.exitstatus not in (0, None), child.before
        assert f"Lost the connection to session {live}" in child.before, child.before
        wait_until("the old shell to be ended", lambda: not alive(pid), timeout=15)
        sessions = history(server)
        assert sessions[finished] == "Terminated" and sessions[live] == "Terminated", sessions
        assert len(sessions) == 3 and all(v == "Terminated" for v in sessions.values()), sessions
        ssm = server.client("ssm", server.admin_keys())
        assert ssm.describe_sessions(State="Active")["Sessions"] == []
        assert ssm.get_connection_status(Target=TEST_NODE)["Status"] == "connected"
    finally:
        agent.stop()


def metric(server, name):
    """One sample from `/metrics` (the Prometheus text format), by its full name and labels."""
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def open_data_channel_with(server, session_id, token):
    """A raw WebSocket to the data channel: upgrade, then AWS's OpenDataChannel text frame
    (masked, as a client must), then read until the server closes."""
    host, port = server.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /v1/data-channel/{session_id}?role=publish_subscribe HTTP/1.1\r\n"
                   f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        payload = json.dumps({"MessageSchemaVersion": "1.0", "RequestId": "r-1",
                              "TokenValue": token, "ClientId": "c-1"}).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(frame)
        rest = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return rest
            rest += chunk


def test_metrics_count_agents_frames_and_refusals(server, admin, fleet, tmp_path):
    assert metric(server, "portcullis_agents_connected") == 2
    to_client = 'portcullis_relayed_frames_total{direction="to_client"}'
    to_agent = 'portcullis_relayed_frames_total{direction="to_agent"}'
    bytes_to_client = 'portcullis_relayed_bytes_total{direction="to_client"}'
    before = {n: metric(server, n) for n in (to_client, to_agent, bytes_to_client)}

    keys = user(admin, "TestUserA", "pattern-3-abac")
    env = profile_env(server, tmp_path, keys)
    out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                         input="seq 1 2000\nexit\n", capture_output=True, text=True, env=env, timeout=60)
    assert "2000" in out.stdout, out.stdout + out.stderr
    # Handshake, output and acknowledgements went through the relay, both ways.
    assert metric(server, to_client) >= before[to_client] + 3
    assert metric(server, to_agent) >= before[to_agent] + 3
    assert metric(server, bytes_to_client) >= before[bytes_to_client] + len("\r\n".join(map(str, range(1, 2001))))
    assert metric(server, "portcullis_session_clients_attached") == 0
    # The session's output went to its log too (written up to 50 ms later), with no failure.
    seq_bytes = len("\r\n".join(map(str, range(1, 2001))))
    wait_until("the session log's bytes", lambda: metric(server, "portcullis_session_log_bytes_total") >= seq_bytes)
    assert metric(server, "portcullis_session_log_write_failures_total") == 0

    # A token nobody issued: the socket is closed at once, and counted.
    refused = metric(server, "portcullis_data_channels_refused_total")
    session_id = admin["ssm"].describe_sessions(State="History")["Sessions"][0]["SessionId"]
    open_data_channel_with(server, session_id, "not-a-token")
    assert metric(server, "portcullis_data_channels_refused_total") == refused + 1


def test_portcullis_session_over_tls(tmp_path):
    """--tls-cert/--tls-key end to end: the agent (trusting the certificate with --ca-cert) and
    our client (with AWS_CA_BUNDLE) reach the server over https and wss; a shell answers."""
    cert, key = self_signed_cert(tmp_path)
    server = Server(tmp_path / "data", extra=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
    agent = None
    os.environ["AWS_CA_BUNDLE"] = str(cert)
    try:
        assert server.endpoint.startswith("https://")
        keys = server.admin_keys()
        admin = {s: server.client(s, keys) for s in ("iam", "ssm", "ec2")}
        agent = Agent(server, admin, TEST_NODE, tmp_path / "agent", {"Project": "test"},
                      register_args=["--ca-cert", str(cert)])
        user_keys = user(admin, "TestUserA", "pattern-3-abac")
        env = profile_env(server, tmp_path, user_keys)
        env["AWS_CA_BUNDLE"] = str(cert)
        out = subprocess.run([str(BIN), "session", "start", "--target", TEST_NODE],
                             input="echo tls-$((40+2))\nexit\n", capture_output=True, text=True,
                             env=env, timeout=60)
        assert "tls-42" in out.stdout, out.stdout + out.stderr
        assert out.returncode == 0, out.stderr
        history = admin["ssm"].describe_sessions(State="History")["Sessions"]
        assert [s["Status"] for s in history] == ["Terminated"]
    finally:
        del os.environ["AWS_CA_BUNDLE"]
        if agent:
            agent.stop()
        server.stop()
