"""moto's server, with requests handled one at a time.

moto applies a TransactWriteItems (or a conditional write) step by step without a lock, so
under concurrent requests two "attribute_not_exists" transactions can both win, or both lose
with half their items written. DynamoDB's transactions are serializable; handling moto's
requests one at a time restores that, so the concurrency tests test our code, not moto's
races. Connections are still served by threads (keep-alive clients do not block others).
A moto feature that calls back into this server (Lambda triggers, SNS to SQS) would wait
on the lock forever; Switchboard uses none.

Usage: python moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler

LOCK = threading.Lock()


class Serialized:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with LOCK:
            # Consume the body inside the lock: the handler runs while it is iterated.
            body = self.app(environ, start_response)
            try:
                return list(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
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
