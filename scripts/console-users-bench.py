#!/usr/bin/env python3
"""The console Users list with many users: a seeded server, N users made with boto3, then
three timed GET /console/api/users (BENCHMARKS.md). Usage: console-users-bench.py BIN N."""
import json, os, subprocess, sys, time, urllib.request, re, tempfile, configparser
import boto3
from botocore.config import Config
BIN = sys.argv[1]; N = int(sys.argv[2])
d = tempfile.mkdtemp()
p = subprocess.Popen([BIN, "server", "--data-dir", d, "--listen", "127.0.0.1:0", "--seed"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RUST_LOG": "warn"})
while True:
    m = re.search(r"listening on (http://\S+)", p.stdout.readline())
    if m: ep = m.group(1); break
cp = configparser.ConfigParser(); cp.read(d + "/credentials"); s = cp["portcullis-admin"]
iam = boto3.client("iam", endpoint_url=ep, region_name="ap-northeast-1", aws_access_key_id=s["aws_access_key_id"], aws_secret_access_key=s["aws_secret_access_key"], config=Config(retries={"max_attempts": 1}))
for i in range(N):
    iam.create_user(UserName=f"user{i:04d}", Tags=[{"Key": "Project", "Value": "test"}])
req = urllib.request.Request(ep + "/console/api/signin", data=json.dumps({"method": "key", "accessKeyId": s["aws_access_key_id"], "secretAccessKey": s["aws_secret_access_key"]}).encode(), headers={"content-type": "application/json", "origin": ep}, method="POST")
r = urllib.request.urlopen(req); cookie = r.headers["set-cookie"].split(";")[0]
for _ in range(3):
    t = time.perf_counter()
    body = urllib.request.urlopen(urllib.request.Request(ep + "/console/api/users", headers={"cookie": cookie})).read()
    print(f"{N} users: GET /console/api/users {1000*(time.perf_counter()-t):.0f} ms, {len(json.loads(body)['users'])} users")
p.terminate()
