#!/bin/bash
# Creates the tape archive's tables and queues inside LocalStack (runs when LocalStack is
# ready). The definitions come from resources.json, generated from definitions.ts by
# `npm run localstack:resources`: no hand-kept copy.
set -euo pipefail
RES=/etc/localstack/tape-archive/resources.json
python3 - "$RES" <<'PY'
import json, subprocess, sys
res = json.load(open(sys.argv[1]))
def aws(*args):
    return subprocess.run(["awslocal", *args], check=True, capture_output=True, text=True).stdout
for t in res["tables"]:
    try:
        aws("dynamodb", "create-table", "--cli-input-json", json.dumps(t))
    except subprocess.CalledProcessError as e:
        if "ResourceInUseException" not in e.stderr: raise
for q in res["queues"]:
    dlq = json.loads(aws("sqs", "create-queue", "--queue-name", q["dlqName"]))["QueueUrl"]
    arn = json.loads(aws("sqs", "get-queue-attributes", "--queue-url", dlq, "--attribute-names", "QueueArn"))["Attributes"]["QueueArn"]
    attrs = dict(q["attributes"], RedrivePolicy=json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": q["maxReceiveCount"]}))
    aws("sqs", "create-queue", "--queue-name", q["name"], "--attributes", json.dumps(attrs))
print("tape-archive resources ready")
PY
