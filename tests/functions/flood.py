"""A Lambda runtime written by hand that writes FLOOD_MB megabytes to its
stdout without a newline during each invocation, then answers it."""
import os
import sys
import urllib.request

BASE = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
CHUNK = b"x" * (1024 * 1024)

while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as asked:
        request_id = asked.headers["Lambda-Runtime-Aws-Request-Id"]
        asked.read()
    for _ in range(int(os.environ["FLOOD_MB"])):
        sys.stdout.buffer.write(CHUNK)
    sys.stdout.buffer.flush()
    answer = urllib.request.Request(
        BASE + "/invocation/%s/response" % request_id, data=b"{}", method="POST"
    )
    urllib.request.urlopen(answer).read()
