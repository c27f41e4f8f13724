"""An unmodified Lambda handler for the `bootstrap` tests, run by awslambdaric.

It parses the event with Powertools' own event types, writes one JSON line
per invocation to RECORD_TO (and one per init), prints a line to its log,
and then, by the first body's text: "boom" raises, "sleep" outlives the
timeout, "slow" takes a second, "exit" kills the process; anything else
succeeds.
"""
import json, os, time

from aws_lambda_powertools.utilities.data_classes.active_mq_event import ActiveMQEvent
from aws_lambda_powertools.utilities.data_classes.rabbit_mq_event import RabbitMQEvent


def record(entry):
    with open(os.environ["RECORD_TO"], "a") as f:
        f.write(json.dumps(entry) + "\n")


record({"init": os.getpid(), "handler": os.environ.get("_HANDLER"), "task_root": os.environ.get("LAMBDA_TASK_ROOT")})


def bodies(event):
    if event.get("eventSource") == "aws:rmq":
        parsed = RabbitMQEvent(event)
        return [m.decoded_data for ms in parsed.rmq_messages_by_queue.values() for m in ms]
    return [m.decoded_data for m in ActiveMQEvent(event).messages]


def handler(event, context):
    texts = bodies(event)
    record({
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_arn": context.invoked_function_arn,
        "bodies": texts,
        "table": os.environ.get("TABLE"),
    })
    print(f"handled {len(texts)} message(s): {texts[0]}")
    if "boom" in texts[0]:
        raise ValueError(f"bad order {texts[0]}")
    if "sleep" in texts[0]:
        time.sleep(60)
    if "slow" in texts[0]:
        time.sleep(1)
    if "exit" in texts[0]:
        os._exit(3)
    return {"handled": len(texts)}
