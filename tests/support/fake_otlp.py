"""Fake OTLP trace collectors: a real HTTP server and a real gRPC server, both decoding
the protobuf ExportTraceServiceRequest the exporters send."""

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tests.support import secrets
from tests.support.httpserver import LoopbackServer


def _value(v):
    kind = v.WhichOneof('value')
    return getattr(v, kind) if kind else None


class _Store:
    def __init__(self):
        self.spans = []
        self.headers = []
        self.lock = threading.Lock()

    def receive(self, request, headers):
        secrets.produced('spans at a fake collector', str(request))
        with self.lock:
            self.headers.append(headers)
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append(
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.collector.receive(request, dict(self.headers))
        data = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-protobuf')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeCollector(_Store):
    """OTLP over HTTP (protobuf) at ``endpoint``."""

    def __init__(self):
        super().__init__()
        self.http = LoopbackServer(_Handler, collector=self)

    @property
    def endpoint(self):
        return self.http.url + '/v1/traces'

    def start(self):
        self.http.start()
        return self

    def stop(self):
        self.http.stop()


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store):
        self.store = store

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.store.receive(request, dict(context.invocation_metadata()))
        return ExportTraceServiceResponse()


class FakeGrpcCollector(_Store):
    """OTLP over gRPC (insecure) at ``endpoint``."""

    def __init__(self):
        super().__init__()
        self.server = grpc.server(futures.ThreadPoolExecutor(2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _Servicer(self), self.server
        )
        self.port = self.server.add_insecure_port('127.0.0.1:0')

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.port}'

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(grace=2).wait(5)
