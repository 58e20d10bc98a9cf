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
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
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


def patch_moto():
    if moto.__version__ != PATCHED_FOR:
        sys.exit(f"moto_server.py patches moto {PATCHED_FOR}, not {moto.__version__}")
    DynamoDBBackend.transact_write_items = _transact_write_items(
        DynamoDBBackend.transact_write_items
    )
    Table.query = _partition_query(Table.query)


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
