"""A Lambda runtime written against the Runtime API by hand, that logs a
line after it has posted each answer and before it asks for the next
invocation: on Lambda that line is still the invocation's."""
import os
import urllib.request

BASE = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]

while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as asked:
        request_id = asked.headers["Lambda-Runtime-Aws-Request-Id"]
        asked.read()
    answer = urllib.request.Request(
        BASE + "/invocation/%s/response" % request_id, data=b"{}", method="POST"
    )
    urllib.request.urlopen(answer).read()
    print("after the answer to " + request_id, flush=True)
