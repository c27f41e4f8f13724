#!/usr/bin/env python3
"""A test function: records the trace it was given (_X_AMZN_TRACE_ID and
TRACEPARENT) as one JSON line per invocation in RECORD_TO."""
import json, os, sys

sys.stdin.buffer.read()
with open(os.environ["RECORD_TO"], "a") as f:
    f.write(json.dumps({
        "xray": os.environ.get("_X_AMZN_TRACE_ID"),
        "traceparent": os.environ.get("TRACEPARENT"),
    }) + "\n")
