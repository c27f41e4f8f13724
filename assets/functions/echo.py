#!/usr/bin/env python3
"""A demo function for mqtrigger's `command` runtime.

Reads the Lambda event (Amazon MQ trigger JSON) on stdin, prints one line per
message to stderr, and answers {"ok": true, "messages": N} on stdout.
Handles both shapes Lambda sends:
  aws:rmq  (RabbitMQ)  {"rmqMessagesByQueue": {"<queue>::<vhost>": [msg, ...]}}
  aws:mq   (ActiveMQ)  {"messages": [msg, ...]}
"""
import base64
import json
import sys

MAX_BODY = 200


def body_of(message):
    """The decoded body, one line, at most MAX_BODY characters."""
    try:
        raw = base64.b64decode(message.get("data") or "")
    except ValueError:
        return "<data is not base64>"
    text = raw.decode("utf-8", errors="replace").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "..."


def main():
    event = json.load(sys.stdin)
    source = event.get("eventSource", "?")
    lines = []
    if "rmqMessagesByQueue" in event:  # aws:rmq
        for queue, messages in event["rmqMessagesByQueue"].items():
            for m in messages:
                lines.append((queue, m.get("redelivered", False), body_of(m)))
    else:  # aws:mq
        for m in event.get("messages", []):
            queue = (m.get("destination") or {}).get("physicalName", "?")
            lines.append((queue, m.get("redelivered", False), body_of(m)))

    print(f"echo.py: {source} batch of {len(lines)}", file=sys.stderr)
    for queue, redelivered, body in lines:
        print(f"  {queue} redelivered={str(redelivered).lower()} {body}", file=sys.stderr)
    json.dump({"ok": True, "messages": len(lines)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
