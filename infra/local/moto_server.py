"""moto's server, with requests handled one at a time.

moto applies a TransactWriteItems (or a conditional write) step by step without a lock, so
under concurrent requests two "attribute_not_exists" transactions can both win, or both lose
with half their items written. DynamoDB's transactions are serializable; handling moto's
requests one at a time restores that, so the concurrency tests test our code, not moto's
races. Connections are still served by threads (keep-alive clients do not block others).
A moto feature that calls back into this server (Lambda triggers, SNS to SQS) would wait
on the lock forever; Switchboard uses none.

Serialized, every request waits for the ones before it, so no request may cost more than
DynamoDB's would. Two of moto's cost with everything the table holds, not with what they
touch, and the test suite shares one table: TransactWriteItems deep-copies the whole table
once per item (its rollback backup), and Query scans every item of the table to find one
partition. As the suite filled the tables, a request could queue past the SDK's 2 s attempt
timeout and surface as 503 (issue 17). Both are patched below to cost what they touch; one
request at a time is what makes an item-level backup a complete one.

DynamoDB makes a TransactWriteItems carrying a ClientRequestToken idempotent for ten minutes
(the AWS SDKs fill one in and send the same one on every retry of a call): a repeat of a
transaction that succeeded succeeds again without writing, and the token with other items
is an IdempotentParameterMismatchException. moto ignores the token, so an SDK retry of a
transaction whose answer was lost would fail on its own writes here and not on AWS; the
fault-injection tests lose such answers on purpose. The token is honoured below.

Serialized, moto's own cost per request is the capacity every test and bench shares (one
Python process); DynamoDB has no such shared queue. Three of moto's per-request costs that
do nothing for a local DynamoDB are cut below: finding the service by listing moto's
package directory on every request, listing a handler's methods with `inspect` on every
request, and writing the item operations' answers through moto's generic shape-walking
serializer, where the answer already is DynamoDB's JSON. MOTO_CHECK_FAST=1 serializes each
such answer both ways and logs any difference (`fast-serializer mismatch`), answering with
moto's own.

Usage: python moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import collections
import copy
import hashlib
import io
import json
import os
import sys
import threading
import time

from werkzeug.serving import run_simple

import moto
import moto.core.responses as core_responses
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler

# The patches lean on moto's internals; scripts/moto.sh pins this version.
PATCHED_FOR = "5.2.5"

LOCK = threading.Lock()
# MOTO_TIMING=1: one line per request on stderr (operation, time queued for the lock, time
# handled), to see whether concurrent tests wait on this server.
TIMING = os.environ.get("MOTO_TIMING") == "1"


# How long DynamoDB remembers a transaction's ClientRequestToken.
TOKEN_WINDOW_SECS = 600


class Serialized:
    def __init__(self, app):
        self.app = app
        # token -> (hash of the request, when it lapses, status, headers, body), oldest
        # first: every token lives as long, so the expired ones are at the front.
        self.tokens = collections.OrderedDict()

    def _token_of(self, environ):
        """The ClientRequestToken of a TransactWriteItems and the request's hash, the body
        put back for moto to read."""
        if not environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
            return None, None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None, None  # no length (chunked): moto reads the body itself
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            token = json.loads(raw).get("ClientRequestToken")
        except (ValueError, AttributeError):
            return None, None
        return token, hashlib.sha256(raw).hexdigest()

    def _repeat(self, token, digest, start_response):
        """The answer to a transaction whose token was seen, or None to run it."""
        now = time.monotonic()
        while self.tokens and next(iter(self.tokens.values()))[1] <= now:
            self.tokens.popitem(last=False)
        seen = self.tokens.get(token)
        if seen is None or seen[1] <= now:
            return None
        if seen[0] == digest:
            start_response(seen[2], seen[3])
            return seen[4]
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
        error = {
            "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "message": "the ClientRequestToken was used with other transaction items",
        }
        return [json.dumps(error).encode()]

    def __call__(self, environ, start_response):
        arrived = time.monotonic()
        token, digest = self._token_of(environ)
        with LOCK:
            started = time.monotonic()
            if token is not None:
                repeated = self._repeat(token, digest, start_response)
                if repeated is not None:
                    return repeated
            answered = {}

            def capture(status, headers, exc_info=None):
                answered["status"], answered["headers"] = status, headers
                return start_response(status, headers, exc_info)

            # Consume the body inside the lock: the handler runs while it is iterated.
            body = self.app(environ, capture)
            chunks = []
            try:
                chunks = list(body)
                if token is not None and answered.get("status", "").startswith("200"):
                    self.tokens[token] = (
                        digest,
                        time.monotonic() + TOKEN_WINDOW_SECS,
                        answered["status"],
                        answered["headers"],
                        chunks,
                    )
                return chunks
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
                if TIMING:
                    done = time.monotonic()
                    op = environ.get("HTTP_X_AMZ_TARGET", environ.get("PATH_INFO", "?"))
                    print(
                        f"timing {op.rsplit('.', 1)[-1]} queued_ms={1000 * (started - arrived):.1f} "
                        f"handled_ms={1000 * (done - started):.1f} at={done:.3f} "
                        f"bytes={sum(len(c) for c in chunks)}",
                        file=sys.stderr,
                        flush=True,
                    )


class _KeepTables:
    """Stands in for the `copy` module inside DynamoDBBackend.transact_write_items: tables
    are not copied (the item-level backup below replaces that), anything else is."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key_of(table, attrs):
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(original):
    def transact_write_items(self, transact_items):
        # The items this transaction may change, as they are now: its whole rollback state.
        backup = []
        for entry in transact_items:
            op = next(iter(entry.values()), None) or {}
            attrs = op.get("Key") or op.get("Item")
            try:
                # By name or ARN, as moto itself resolves it.
                table = self.get_table(op.get("TableName"))
            except Exception:  # moto reports the unknown table itself
                continue
            if not attrs:
                continue
            try:
                key = _key_of(table, attrs)
            except KeyError:
                continue  # moto reports the malformed key itself
            current = self.get_item(table.name, key)
            backup.append((table.name, key, copy.deepcopy(current.attrs) if current else None))
        dynamodb_models.copy = _KeepTables()
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(backup):
                table = self.get_table(table_name)
                if attrs is None:
                    hash_key, range_key = self.get_keys_value(table, key)
                    if table.get_item(hash_key, range_key) is not None:
                        table.delete_item(hash_key, range_key)
                else:
                    item = {name: value.to_json() for name, value in attrs.items()}
                    self.put_item(table_name, item)
            raise
        finally:
            dynamodb_models.copy = copy

    return transact_write_items


def _partition_query(original):
    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name is not None or hash_key is None or self.range_key_attr is None:
            return original(self, hash_key, *args, **kwargs)
        # `get`, not `[]`: self.items is a defaultdict, and a query must not add a partition.
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return query


# Operations whose output is items and counts only, answered by moto as DynamoResult:
# DynamoDB's JSON as moto built it.
FAST_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
)
CHECK_FAST = os.environ.get("MOTO_CHECK_FAST") == "1"


def _without_nulls(value):
    """What moto's serializer leaves of a result: members set to None are not sent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _fast_execute_result(original):
    def execute_result(self, context):
        name = context.operation_model.name
        if name not in FAST_OPERATIONS or not isinstance(self.result, dict):
            return original(self, context)
        # Only the operation's output members, as moto's serializer sends (DeleteItem's
        # result carries a stray ConsumedCapacityUnits).
        members = context.operation_model.output_shape.members
        result = {k: v for k, v in self.result.items() if k in members}
        try:
            body = json.dumps(_without_nulls(result))
        except TypeError:
            return original(self, context)  # binary values: moto's serializer base64s them
        version = context.service_model.metadata.get("jsonVersion", "1.0")
        headers = {"Content-Type": f"application/x-amz-json-{version}"}
        if CHECK_FAST:
            status, slow_headers, slow_body = original(self, context)
            if (status, slow_headers, json.loads(slow_body)) != (200, headers, json.loads(body)):
                print(
                    f"fast-serializer mismatch in {name}: status {status}, headers "
                    f"{slow_headers} vs {headers}, body {slow_body} vs {body}",
                    file=sys.stderr,
                    flush=True,
                )
                return status, slow_headers, slow_body
        return 200, headers, body

    return execute_result


def _memo_backend_for_host(original):
    # The answer depends on the host only; moto lists its package directory to find it.
    def get_backend_for_host(self, host):
        memo = self.__dict__.setdefault("_switchboard_backend_memo", {})
        if host not in memo:
            memo[host] = original(self, host)
        return memo[host]

    return get_backend_for_host


def _memo_method_names(original):
    memo = {}

    def method_names_from_class(clazz):
        if clazz not in memo:
            memo[clazz] = original(clazz)
        return memo[clazz]

    return method_names_from_class


def patch_moto():
    if moto.__version__ != PATCHED_FOR:
        sys.exit(f"moto_server.py patches moto {PATCHED_FOR}, not {moto.__version__}")
    DynamoDBBackend.transact_write_items = _transact_write_items(
        DynamoDBBackend.transact_write_items
    )
    Table.query = _partition_query(Table.query)
    DynamoResult.execute_result = _fast_execute_result(DynamoResult.execute_result)
    DomainDispatcherApplication.get_backend_for_host = _memo_backend_for_host(
        DomainDispatcherApplication.get_backend_for_host
    )
    core_responses.method_names_from_class = _memo_method_names(
        core_responses.method_names_from_class
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    patch_moto()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
