"""An unmodified Lambda handler that reports batch item failures with
Powertools' BatchProcessor, for the ReportBatchItemFailures tests.

Powertools' batch utility reads SQS, Kinesis and DynamoDB events; for an
MQ event the handler hands it each message as an SQS-shaped record whose
messageId is the MQ record's id (ActiveMQ's messageID, RabbitMQ's
basicProperties.messageId, else the mqtriggerMessageId mqtrigger gives a
message without one). Powertools answers {"batchItemFailures": [...]}
naming the records whose handling raised. A body holding "bad" raises;
every body handled is written as a JSON line to RECORD_TO.
"""
import base64, json, os

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record):
    body = record.body
    if "bad" in body:
        raise ValueError(f"cannot handle {body}")
    with open(os.environ["RECORD_TO"], "a") as f:
        f.write(json.dumps({"handled": body, "id": record.message_id}) + "\n")


def mq_records(event):
    if event.get("eventSource") == "aws:rmq":
        messages = [m for ms in event["rmqMessagesByQueue"].values() for m in ms]
        ids = [m["basicProperties"].get("messageId") or m.get("mqtriggerMessageId") for m in messages]
    else:
        messages = event["messages"]
        ids = [m["messageID"] for m in messages]
    return [
        {
            "messageId": message_id,
            "body": base64.b64decode(m["data"]).decode(),
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }
        for m, message_id in zip(messages, ids)
    ]


def handler(event, context):
    return process_partial_response(
        event={"Records": mq_records(event)},
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
