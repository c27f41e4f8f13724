#!/usr/bin/env python3
"""A demo function that always fails, to watch retries and dead letters.

Reads the event on stdin (so the writer never sees a broken pipe), prints a
Lambda-style error on stdout and exits 1: mqtrigger counts that as a function
error, retries the batch with back-off, then dead-letters its messages.
"""
import json
import sys

event = json.load(sys.stdin)
if "rmqMessagesByQueue" in event:
    count = sum(len(ms) for ms in event["rmqMessagesByQueue"].values())
else:
    count = len(event.get("messages", []))
print(f"fail.py: failing a batch of {count}", file=sys.stderr)
json.dump({"errorType": "DemoError", "errorMessage": f"fail.py always fails (batch of {count} messages)"}, sys.stdout)
print()
sys.exit(1)
