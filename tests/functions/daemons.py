"""A Lambda runtime written by hand whose first invocation leaves two
processes behind in sessions of their own: a child (its parent, this
runtime, lives on) and an orphan (its parent exited, so init adopted it).
It writes their pids to DAEMONS_TO, then answers."""
import os
import subprocess
import urllib.request

BASE = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
child = subprocess.Popen(["setsid", "sleep", "300"])
orphan = subprocess.run(
    ["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"],
    capture_output=True, text=True, check=True,
).stdout.strip()
with open(os.environ["DAEMONS_TO"], "w") as f:
    f.write("%d %s\n" % (child.pid, orphan))

while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as asked:
        request_id = asked.headers["Lambda-Runtime-Aws-Request-Id"]
        asked.read()
    answer = urllib.request.Request(
        BASE + "/invocation/%s/response" % request_id, data=b"{}", method="POST"
    )
    urllib.request.urlopen(answer).read()
