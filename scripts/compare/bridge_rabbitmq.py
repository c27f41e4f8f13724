#!/usr/bin/env python3
"""A RabbitMQ → Lambda bridge written as a user would: pika, botocore Invoke,
one ack per batch (multiple=True). The yardstick for mqtrigger's throughput.

    bridge_rabbitmq.py AMQP_URL QUEUE MESSAGES BATCH ENDPOINT_URL

Prints one JSON line: messages, seconds (first message received to last
ack), cpu_seconds (this process).
"""
import base64
import json
import sys
import time

from bridge_common import cpu, lambda_client
import pika


def record(method, props, body):
    return {
        "basicProperties": {
            "contentType": props.content_type,
            "contentEncoding": props.content_encoding,
            "headers": props.headers or {},
            "deliveryMode": props.delivery_mode,
            "priority": props.priority,
            "correlationId": props.correlation_id,
            "replyTo": props.reply_to,
            "expiration": props.expiration,
            "messageId": props.message_id,
            "timestamp": props.timestamp,
            "type": props.type,
            "userId": props.user_id,
            "appId": props.app_id,
            "clusterId": props.cluster_id,
            "bodySize": len(body),
        },
        "redelivered": method.redelivered,
        "data": base64.b64encode(body).decode(),
    }


def main():
    url, queue, total, batch_size, endpoint = sys.argv[1:6]
    total, batch_size = int(total), int(batch_size)
    client = lambda_client(endpoint)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=batch_size * 2)
    key = f"{queue}::/"
    done, batch, last_tag, first = 0, [], None, None
    cpu0 = cpu()
    for method, props, body in channel.consume(queue, inactivity_timeout=0.5):
        if method is None:
            if not batch:
                continue
        else:
            if first is None:
                first = time.monotonic()
            batch.append(record(method, props, body))
            last_tag = method.delivery_tag
            if len(batch) < batch_size and done + len(batch) < total:
                continue
        event = {
            "eventSource": "aws:rmq",
            "eventSourceArn": "arn:aws:mq:us-east-1:000000000000:broker:bridge:b-1",
            "rmqMessagesByQueue": {key: batch},
        }
        answer = client.invoke(FunctionName="bridge", Payload=json.dumps(event).encode())
        answer["Payload"].read()
        if answer.get("FunctionError"):
            sys.exit(f"the function failed: {answer['FunctionError']}")
        channel.basic_ack(delivery_tag=last_tag, multiple=True)
        done += len(batch)
        batch = []
        if done >= total:
            break
    seconds = time.monotonic() - first
    print(json.dumps({"messages": done, "seconds": seconds, "cpu_seconds": cpu() - cpu0}))
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
