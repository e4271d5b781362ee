"""A fake Ollama server: ``POST /api/chat`` in Ollama's native format, NDJSON streams.

By model: ``llama-text`` echoes the last user message; ``llama-tool`` calls the first
tool with {"city": <last user text>} (arguments as an object, no id, as Ollama does),
and after a tool message answers "result was: <content>"; ``llama-long`` stops with
done_reason "length"; ``llama-404`` answers 404 {"error": "model not found"}.
"""

import json

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer


class FakeOllama(FakeServer):
    def __init__(self):
        super().__init__(_Handler)


class _Handler(FakeHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))))
        self.server.fake.requests.append(body)
        model = body['model']
        if self.path == '/api/embed':
            return self.send_json(
                200,
                {
                    'model': model,
                    'prompt_eval_count': 5,
                    'embeddings': [[0.1, 0.2] for _ in body['input']],
                },
            )
        if model == 'llama-404':
            return self.send_json(404, {'error': f"model '{model}' not found"})
        last = body['messages'][-1]
        message = {'role': 'assistant', 'content': ''}
        reason = 'length' if model == 'llama-long' else 'stop'
        if model == 'llama-tool' and last['role'] != 'tool':
            message['tool_calls'] = [
                {
                    'function': {
                        'name': body['tools'][0]['function']['name'],
                        'arguments': {'city': last['content']},
                    }
                }
            ]
        elif last['role'] == 'tool':
            message['content'] = f'result was: {last["content"]}'
        else:
            message['content'] = f'echo: {last["content"]}'
        final = {
            'model': model,
            'created_at': '2026-01-01T00:00:00Z',
            'done': True,
            'done_reason': reason,
            'prompt_eval_count': 26,
            'eval_count': 7,
        }
        if not body.get('stream'):
            return self.send_json(200, dict(final, message=message))
        lines = []
        for word in message['content'].split(' ') if message['content'] else []:
            lines.append(
                {
                    'model': model,
                    'message': {'role': 'assistant', 'content': word + ' '},
                    'done': False,
                }
            )
        if message.get('tool_calls'):
            lines.append({'model': model, 'message': message, 'done': False})
        lines.append(dict(final, message={'role': 'assistant', 'content': ''}))
        data = b''.join(json.dumps(line).encode() + b'\n' for line in lines)
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-ndjson')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
