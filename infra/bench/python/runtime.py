"""The Python baseline of scripts/bench: the Node.js baseline's handler with boto3 and
jsonschema (client and validators built once), under a minimal runtime loop over http.client."""

import base64
import http.client
import json
import os

import boto3
import jsonschema

with open(os.environ["BENCH_BOOKING_MANIFEST"]) as f:
    MANIFEST = json.load(f)
TABLE = os.environ.get("REGISTRY_TABLE", "switchboard-registry")
PLUGIN = MANIFEST["name"]

# Region, credentials and AWS_ENDPOINT_URL come from the environment, as on Lambda.
DDB = boto3.client("dynamodb")
SCHEMAS = {f["name"]: f["parameters"] for f in MANIFEST["functions"]}
VALIDATORS = {}


def validator_for(name):
    v = VALIDATORS.get(name)
    if v is None and name in SCHEMAS:
        v = jsonschema.Draft202012Validator(SCHEMAS[name])
        VALIDATORS[name] = v
    return v


def reply(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body)}


def fail(status, code, message, details=()):
    return reply(status, {"success": False,
                          "error": {"code": code, "message": message, "details": list(details)}})


def handler(event):
    org = (((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}).get("orgId")
    if not isinstance(org, str) or not org:
        return fail(401, "unauthenticated", "no tenant context")
    try:
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        call = json.loads(raw)
    except ValueError:
        return fail(400, "invalid_request", "the body is not JSON")
    if not isinstance(call, dict) or not isinstance(call.get("function"), str):
        return fail(400, "invalid_request", "missing function")
    out = DDB.get_item(TableName=TABLE,
                       Key={"PK": {"S": f"ORG#{org}"}, "SK": {"S": f"INST#{PLUGIN}"}})
    instance = ((out.get("Item") or {}).get("data") or {}).get("M")
    if not instance or instance.get("enabled", {}).get("BOOL") is not True:
        return fail(403, "plugin_not_enabled", f"{PLUGIN} is not enabled for {org}")
    validate = validator_for(call["function"])
    if validate is None:
        return fail(404, "unknown_function", call["function"])
    params = call.get("parameters") or {}
    errors = [{"path": "/" + "/".join(map(str, e.absolute_path)), "message": e.message}
              for e in validate.iter_errors(params)]
    if errors:
        return fail(422, "validation_failed", "invalid parameters", errors)
    return reply(200, {"success": True,
                       "result": {"function": call["function"], "org": org, "parameters": params}})


def main():
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    base = "/2018-06-01/runtime/invocation"
    while True:
        conn.request("GET", base + "/next")
        res = conn.getresponse()
        event = json.loads(res.read())
        request_id = res.getheader("Lambda-Runtime-Aws-Request-Id")
        try:
            body, kind = json.dumps(handler(event)), "response"
        except Exception as e:  # reported to the runtime API, as Lambda's runtime does
            body, kind = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}), "error"
        conn.request("POST", f"{base}/{request_id}/{kind}", body=body,
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
