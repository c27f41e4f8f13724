#!/usr/bin/env python3
"""A Lambda Invoke API endpoint in Python, the same for every bridge compared.

    endpoint.py PORT TIMING_LOG [SLEEP_MS]

Answers POST /2015-03-31/functions/NAME/invocations with `{}` over HTTP/1.1
keep-alive. Like the smallest real handler, it parses the event and decodes
each message's data (then sleeps SLEEP_MS, a function that takes a set time
per batch), over HTTP/1.1
keep-alive, one request at a time per connection. For each request it
appends "first_byte_ns answered_ns" to TIMING_LOG: when the request line
arrived and when the answer was flushed. From those, compare.py reads how
busy the function was and the gap between one answer and the next request.
"""
import base64
import http.server
import json
import sys
import time


class Invoke(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle holds the
    # body until the client's delayed ACK, 40 ms per request.
    disable_nagle_algorithm = True

    def parse_request(self):
        # Called as soon as the request line is read: the first bytes.
        self.first_byte_ns = time.time_ns()
        return super().parse_request()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        event = json.loads(self.rfile.read(length))
        if "rmqMessagesByQueue" in event:
            messages = [m for q in event["rmqMessagesByQueue"].values() for m in q]
        else:
            messages = event.get("messages", [])
        for m in messages:
            base64.b64decode(m["data"])
        if SLEEP:
            time.sleep(SLEEP)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        LOG.write(f"{self.first_byte_ns} {time.time_ns()}\n")
        LOG.flush()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, log = int(sys.argv[1]), sys.argv[2]
    SLEEP = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    LOG = open(log, "a", buffering=1 << 16)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Invoke)
    server.daemon_threads = True
    server.serve_forever()
