"""Serve moto's S3 API with requests processed one at a time.

moto's own `moto.server` handles requests on many threads at once, and its
check of a conditional put (`If-None-Match: *`) is not atomic across threads,
so two racing create-only puts can both succeed there, which never happens
on S3. Here connections still get a thread each (so idle keep-alive
connections block nobody), but each request is processed under one lock,
which makes every request atomic, as S3's conditional writes are.

Usage: python3 moto_serial.py <host> <port>
"""
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(host, port, one_at_a_time, threaded=True)


if __name__ == "__main__":
    main()
