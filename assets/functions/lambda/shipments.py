"""The demo's shipment handler: an unmodified Lambda handler, as it would
be deployed to Lambda. mqtrigger runs it with awslambdaric (its `bootstrap`
function kind): one warm process, Lambda's context, its logs in the
console's batch inspector (Tab to Batches, Enter).

A shipment without an address raises: its batch is retried, then
dead-lettered with the error's type and message.
"""
import base64
import json


def handler(event, context):
    shipped = []
    for messages in event["rmqMessagesByQueue"].values():
        for message in messages:
            shipment = json.loads(base64.b64decode(message["data"]))
            if not shipment.get("address"):
                raise ValueError(f"shipment {shipment['shipment']} has no address")
            shipped.append(shipment["shipment"])
    print(
        f"shipped {shipped} (request {context.aws_request_id},"
        f" {context.get_remaining_time_in_millis()} ms left)"
    )
    return {"shipped": shipped}
