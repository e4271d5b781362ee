"""A threaded HTTP server on a free loopback port, with a bounded stop."""

import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer


class _Counting(ThreadingHTTPServer):
    """Counts the connections it accepted (`accepted`)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.accepted = 0
        self._lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._lock:
            self.accepted += 1
        super().process_request(request, client_address)


class LoopbackServer:
    def __init__(self, handler, **attributes):
        self.server = _Counting(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        for name, value in attributes.items():
            setattr(self.server, name, value)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f'http://127.0.0.1:{self.server.server_address[1]}'

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FakeHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler with helpers to answer bytes or JSON."""

    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def send_bytes(self, status, data, ctype, headers=()):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_sse(self, events, keep_alive=False):
        """A 200 event stream of `events` (bytes each, flushed one by one). Then
        the connection closes; or, `keep_alive`, the stream is sent chunked and
        the connection kept for the next request, as a provider's API does."""
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        if keep_alive:
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Connection', 'close')
        self.end_headers()
        for e in events:
            self.wfile.write(b'%x\r\n%s\r\n' % (len(e), e) if keep_alive else e)
            self.wfile.flush()
        if keep_alive:
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.close_connection = True

    def send_json(self, status, obj, headers=()):
        self.send_bytes(status, json.dumps(obj).encode(), 'application/json', headers)


class FakeServer:
    """A fake provider on a loopback port; its handler reaches it as
    ``self.server.fake``. `prefix` is the path its base URL ends with."""

    prefix = ''

    def __init__(self, handler):
        self.requests = []
        self.http = LoopbackServer(handler, fake=self)

    @property
    def base_url(self):
        return self.http.url + self.prefix

    def start(self):
        self.http.start()
        return self

    @property
    def connections(self):
        """How many connections the fake has accepted."""
        return self.http.server.accepted

    def stop(self):
        self.http.stop()
