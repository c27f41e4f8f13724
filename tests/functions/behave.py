#!/usr/bin/env python3
"""A test function whose behaviour the first argument picks."""
import base64, json, os, signal, subprocess, sys, time


def bodies(event):
    """The message bodies of an aws:rmq or aws:mq event, as text."""
    if "rmqMessagesByQueue" in event:
        records = [m for q in event["rmqMessagesByQueue"].values() for m in q]
    else:
        records = event["messages"]
    return [base64.b64decode(m["data"]).decode() for m in records]


def note(path, lines):
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())


mode = sys.argv[1]
if mode == "echo":
    sys.stdout.buffer.write(sys.stdin.buffer.read())
elif mode == "lambda-error":
    sys.stdin.read()
    print(json.dumps({"errorType": "OrderInvalid", "errorMessage": "order 7 has no lines"}))
    sys.exit(1)
elif mode == "plain-fail":
    sys.stdin.read()
    print("this is not JSON")
    print("bad input", file=sys.stderr)
    sys.exit(2)
elif mode == "crash":
    sys.stdin.read()
    for i in range(500):
        print(f"trace line {i}", file=sys.stderr)
    print("Traceback: something broke", file=sys.stderr)
    sys.exit(3)
elif mode == "signal":
    sys.stdin.read()
    print("about to die", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
elif mode == "ignore-stdin":
    print("done")
elif mode == "env":
    print(os.environ.get("GREETING", ""))
elif mode == "stderr":
    # Several MB of stderr before stdin is read: the pipe must be drained
    # while the program runs, whatever the bytes are.
    err = sys.stderr.buffer
    err.write(b"\xff\xfe not utf-8\n")
    for i in range(40000):
        err.write(b"log line %d with some padding to make it longer.........\n" % i)
    err.write(b"hello from stderr\n")
    err.flush()
    data = sys.stdin.buffer.read()
    print(len(data))
elif mode == "huge-response":
    sys.stdin.read()
    sys.stdout.write("y" * (7 * 1024 * 1024))
elif mode == "hang":
    # A grandchild that would outlive a careless timeout.
    child = subprocess.Popen(["sleep", "600"])
    with open(sys.argv[2], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(600)
elif mode == "background":
    # Succeeds at once but leaves a grandchild that holds stdout and stderr.
    child = subprocess.Popen(["sleep", "600"])
    with open(sys.argv[2], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    print("done")
elif mode == "half":
    # Handles the first half of the batch, then dies by SIGKILL, for the
    # first CRASHES attempts (counted in ATTEMPTS); then handles it all.
    crashes, attempts, record = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    n = (int(open(attempts).read() or 0) if os.path.exists(attempts) else 0) + 1
    with open(attempts, "w") as f:
        f.write(str(n))
    got = bodies(json.load(sys.stdin))
    if n <= crashes:
        note(record, [f"{n} {b}" for b in got[: len(got) // 2]])
        os.kill(os.getpid(), signal.SIGKILL)
    note(record, [f"{n} {b}" for b in got])
    print("{}")
elif mode == "slow":
    # Takes SECONDS over each batch, noting when it starts and ends.
    seconds, record = float(sys.argv[2]), sys.argv[3]
    got = bodies(json.load(sys.stdin))
    note(record, ["start " + b for b in got])
    time.sleep(seconds)
    note(record, ["end " + b for b in got])
    print("{}")
elif mode == "garbage":
    # Succeeds with output that is neither JSON nor UTF-8.
    sys.stdin.read()
    sys.stdout.buffer.write(b"\xff\xfe\x00{not json")
