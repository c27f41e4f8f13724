#!/usr/bin/env python3
"""An ActiveMQ → Lambda bridge written as a user would: stomp.py, client
acks (one cumulative ACK per batch), botocore Invoke. The yardstick for
mqtrigger's STOMP throughput.

    bridge_activemq.py HOST:PORT USER PASS QUEUE MESSAGES BATCH ENDPOINT_URL

Prints one JSON line: messages, seconds (first message received to last
ack), cpu_seconds (this process).
"""
import base64
import json
import queue as queues
import sys
import time

from bridge_common import cpu, lambda_client
import stomp


class Inbox(stomp.ConnectionListener):
    def __init__(self):
        self.frames = queues.Queue()

    def on_message(self, frame):
        self.frames.put(frame)

    def on_error(self, frame):
        sys.exit(f"the broker said: {frame.body}")


def record(frame, queue):
    h = frame.headers
    body = frame.body.encode() if isinstance(frame.body, str) else frame.body
    return {
        "messageID": h.get("message-id"),
        "messageType": "jms/text-message",
        "deliveryMode": 2 if h.get("persistent") == "true" else 1,
        "correlationID": h.get("correlation-id", ""),
        "replyTo": h.get("reply-to", "null"),
        "type": h.get("type", ""),
        "destination": {"physicalName": queue},
        "redelivered": h.get("redelivered") == "true",
        "expiration": int(h.get("expires", 0)),
        "priority": int(h.get("priority", 0)),
        "data": base64.b64encode(body).decode(),
        "timestamp": int(h.get("timestamp", 0)),
        "brokerInTime": int(h.get("timestamp", 0)),
        "brokerOutTime": int(time.time() * 1000),
        "properties": {},
    }


def main():
    hostport, user, password, queue, total, batch_size, endpoint = sys.argv[1:8]
    total, batch_size = int(total), int(batch_size)
    host, port = hostport.rsplit(":", 1)
    client = lambda_client(endpoint)
    inbox = Inbox()
    conn = stomp.Connection12([(host, int(port))], auto_decode=False)
    conn.set_listener("inbox", inbox)
    conn.connect(user, password, wait=True)
    conn.subscribe(
        f"/queue/{queue}",
        id="bridge",
        ack="client",
        headers={"activemq.prefetchSize": str(batch_size * 2)},
    )
    done, batch, last, first = 0, [], None, None
    cpu0 = cpu()
    while done < total:
        try:
            frame = inbox.frames.get(timeout=0.5)
        except queues.Empty:
            if not batch:
                continue
        else:
            if first is None:
                first = time.monotonic()
            batch.append(record(frame, queue))
            last = frame.headers["ack"]
            if len(batch) < batch_size and done + len(batch) < total:
                continue
        event = {
            "eventSource": "aws:mq",
            "eventSourceArn": "arn:aws:mq:us-east-1:000000000000:broker:bridge:b-1",
            "messages": batch,
        }
        answer = client.invoke(FunctionName="bridge", Payload=json.dumps(event).encode())
        answer["Payload"].read()
        if answer.get("FunctionError"):
            sys.exit(f"the function failed: {answer['FunctionError']}")
        conn.ack(last)
        done += len(batch)
        batch = []
    seconds = time.monotonic() - first
    print(json.dumps({"messages": done, "seconds": seconds, "cpu_seconds": cpu() - cpu0}))
    conn.disconnect()


if __name__ == "__main__":
    main()
