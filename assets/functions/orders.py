#!/usr/bin/env python3
"""The demo's order handler, for mqtrigger's `command` runtime.

Reads the Lambda event (aws:rmq or aws:mq) on stdin and:
- fails the batch if any order says "bad": true (every attempt: after the
  retries its messages are dead-lettered; see them with Tab, Enter, r, R);
- fails a batch the first time it sees an order whose number is a multiple
  of 7 (the retry, marked redelivered, succeeds: watch the redeliveries);
- otherwise answers {"ok": true, "orders": N}.
"""
import base64
import json
import sys

event = json.load(sys.stdin)
if "rmqMessagesByQueue" in event:
    messages = [m for ms in event["rmqMessagesByQueue"].values() for m in ms]
else:
    messages = event.get("messages", [])
orders = []
for m in messages:
    try:
        orders.append((json.loads(base64.b64decode(m.get("data") or "")), m.get("redelivered", False)))
    except ValueError:
        orders.append(({}, m.get("redelivered", False)))
bad = [o for o, _ in orders if o.get("bad")]
flaky = [o for o, redelivered in orders if not redelivered and o.get("order", 1) % 7 == 0]
if bad or flaky:
    why = f"order {bad[0].get('order')} is bad" if bad else f"order {flaky[0].get('order')} hit a flaky dependency"
    print(f"orders.py: failing a batch of {len(orders)}: {why}", file=sys.stderr)
    json.dump({"errorType": "OrderError", "errorMessage": why}, sys.stdout)
    print()
    sys.exit(1)
print(f"orders.py: {len(orders)} order(s) handled", file=sys.stderr)
json.dump({"ok": True, "orders": len(orders)}, sys.stdout)
print()
