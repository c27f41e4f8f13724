#!/usr/bin/env python3
"""A test function whose behaviour the first argument picks."""
import json, os, subprocess, sys, time

mode = sys.argv[1]
if mode == "echo":
    sys.stdout.buffer.write(sys.stdin.buffer.read())
elif mode == "lambda-error":
    sys.stdin.read()
    print(json.dumps({"errorType": "OrderInvalid", "errorMessage": "order 7 has no lines"}))
    sys.exit(1)
elif mode == "crash":
    sys.stdin.read()
    for i in range(500):
        print(f"trace line {i}", file=sys.stderr)
    print("Traceback: something broke", file=sys.stderr)
    sys.exit(3)
elif mode == "ignore-stdin":
    print("done")
elif mode == "env":
    print(os.environ.get("GREETING", ""))
elif mode == "hang":
    # A grandchild that would outlive a careless timeout.
    child = subprocess.Popen(["sleep", "600"])
    with open(sys.argv[2], "w") as f:
        f.write(str(child.pid))
    time.sleep(600)
