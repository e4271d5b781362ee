"""A fake OTLP/HTTP trace collector: a real HTTP server decoding the protobuf body."""

import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)


def _value(v):
    kind = v.WhichOneof('value')
    return getattr(v, kind) if kind else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        collector = self.server.collector
        with collector.lock:
            collector.headers.append(dict(self.headers))
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        collector.spans.append(
                            {
                                'name': span.name,
                                'kind': span.kind,
                                'trace_id': span.trace_id.hex(),
                                'span_id': span.span_id.hex(),
                                'parent_span_id': span.parent_span_id.hex(),
                                'attributes': {
                                    a.key: _value(a.value) for a in span.attributes
                                },
                                'status': span.status.code,
                                'resource': resource,
                                'start': span.start_time_unix_nano,
                                'end': span.end_time_unix_nano,
                            }
                        )
        data = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-protobuf')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeCollector:
    def __init__(self):
        self.spans = []
        self.headers = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.server.daemon_threads = True
        self.server.collector = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.server.server_address[1]}/v1/traces'

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
