// An unmodified Node Lambda handler for the `bootstrap` tests, run by
// aws-lambda-ric: one JSON line per init and per invocation to RECORD_TO;
// a body with "boom" throws, one with "sleep" outlives the timeout.
const fs = require("fs");

const record = (entry) => fs.appendFileSync(process.env.RECORD_TO, JSON.stringify(entry) + "\n");
record({ init: process.pid, handler: process.env._HANDLER });

exports.handler = async (event, context) => {
  const records = event.eventSource === "aws:rmq"
    ? Object.values(event.rmqMessagesByQueue).flat()
    : event.messages;
  const bodies = records.map((m) => Buffer.from(m.data, "base64").toString());
  record({
    pid: process.pid,
    request_id: context.awsRequestId,
    remaining_ms: context.getRemainingTimeInMillis(),
    function_name: context.functionName,
    bodies,
  });
  console.log(`handled ${bodies.length} message(s): ${bodies[0]}`);
  if (bodies[0].includes("boom")) {
    throw new TypeError(`bad order ${bodies[0]}`);
  }
  if (bodies[0].includes("sleep")) {
    await new Promise((resolve) => setTimeout(resolve, 60000));
  }
  return { handled: bodies.length };
};
