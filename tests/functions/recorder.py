#!/usr/bin/env python3
"""A test function: records each event it receives, then succeeds or fails.

RECORD_TO   file to append one JSON line per invocation (the whole event)
SLEEP       seconds to sleep after recording
SPANS_TO    file to append "start end" (nanoseconds) per invocation
FAIL        "always" fails every batch; otherwise a batch fails when a
            message body contains the text "fail"
"""
import base64, json, os, sys, time

started = time.time_ns()
raw = sys.stdin.buffer.read()
event = json.loads(raw)
with open(os.environ["RECORD_TO"], "ab") as f:
    f.write(json.dumps(event).encode() + b"\n")
    f.flush()
    os.fsync(f.fileno())
time.sleep(float(os.environ.get("SLEEP", "0")))
if "SPANS_TO" in os.environ:
    with open(os.environ["SPANS_TO"], "a") as f:
        f.write(f"{started} {time.time_ns()}\n")

def bodies(event):
    for msgs in event.get("rmqMessagesByQueue", {}).values():
        for m in msgs:
            yield base64.b64decode(m["data"])
    for m in event.get("messages", []):
        yield base64.b64decode(m["data"])

if os.environ.get("FAIL") == "always" or any(b"fail" in b for b in bodies(event)):
    print(json.dumps({"errorType": "TestFailure", "errorMessage": "told to fail"}))
    sys.exit(1)
print(json.dumps({"ok": True}))
