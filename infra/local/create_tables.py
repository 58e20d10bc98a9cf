"""Create the DynamoDB tables defined in infra/tables/*.json against an endpoint (moto locally).

Usage: python infra/local/create_tables.py http://127.0.0.1:PORT
Idempotent: existing tables are left alone.
"""
import json
import pathlib
import sys

import boto3

endpoint = sys.argv[1]
client = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
existing = set(client.list_tables()["TableNames"])
for path in sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("tables").glob("*.json")):
    spec = json.loads(path.read_text())
    if spec["TableName"] in existing:
        continue
    client.create_table(**spec)
    client.get_waiter("table_exists").wait(TableName=spec["TableName"])
    print(f"created table {spec['TableName']} from {path.name}")
