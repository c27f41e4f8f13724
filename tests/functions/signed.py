#!/usr/bin/env python3
"""A request signed by botocore's SigV4 (a signer nobody at mqtrigger wrote).

usage: signed.py METHOD URL [BODY]
Signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment
(or not at all when UNSIGNED is set) as service "lambda" in us-east-1.
Prints the status on the first line, then the body. For a server-sent
event stream (text/event-stream) it prints only the first event's lines.
"""
import os, sys, urllib.error, urllib.request

import botocore.auth, botocore.awsrequest, botocore.credentials

method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
if body is not None:
    request.headers["Content-Type"] = "application/json"
if not os.environ.get("UNSIGNED"):
    credentials = botocore.credentials.Credentials(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
prepared = urllib.request.Request(
    request.url, data=body, headers=dict(request.headers), method=method
)
try:
    response = urllib.request.urlopen(prepared, timeout=60)
except urllib.error.HTTPError as e:
    print(e.code)
    print(e.headers.get("x-amzn-ErrorType", ""))
    print(e.read().decode())
    sys.exit(0)
print(response.status)
if response.headers.get("Content-Type", "").startswith("text/event-stream"):
    while True:
        line = response.readline().decode()
        if line.strip() == "" and not line.startswith(":"):
            if line == "":
                break
            # The end of the first event (after its data).
            print(line, end="")
            break
        if not line.startswith(":"):
            print(line, end="")
else:
    print(response.read().decode())
