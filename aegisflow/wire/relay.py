"""Anthropic's Messages API passed through: ``/v1/messages`` to an ``anthropic``
target without translation.

The request goes upstream as the client's bytes (`Native`), with only the value of
the top-level ``model`` replaced (`replace_model`), unless an input policy rewrote a
text: then the rewritten body is encoded again, key order kept. The answer comes
back as the upstream's bytes: a complete ``message`` (`Relayed`) or its events
(`Event`, each with its raw bytes), unless an output policy rewrote a text: then
only the affected text deltas are rewritten (`RelayGuard`), in the same event
format. `RelayUsage` reads usage from ``message_start`` and ``message_delta`` for
the limits, the budgets and the ledger.
"""

import re
from collections import deque

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.policy.walk import message_fields
from aegisflow.wire.anthropic import dropped_fields
from aegisflow.wire.anthropic import events_of_message
from aegisflow.wire.anthropic import message_of_events
from aegisflow.wire.anthropic import to_chat_body
from aegisflow.wire.anthropic import usage_to_openai

# client headers passed on to an Anthropic target (never its key)
FORWARDED = ('anthropic-beta', 'anthropic-version')

# a JSON string, or one of the structural characters
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],]')
_MODEL = b'"model"'


def replace_model(raw, model):
    """`raw` (a JSON object's bytes) with every top-level ``model`` value set to
    `model`; every other byte as it was."""
    depth, expect_key, is_model, spans = 0, False, False, []
    for m in _TOKEN.finditer(raw):
        tok = m.group()
        first = tok[0]
        if first == 0x22:  # '"'
            if depth != 1:
                continue
            if expect_key:
                expect_key = False
                is_model = tok == _MODEL or (
                    b'\\' in tok and orjson.loads(tok) == 'model'
                )
            elif is_model:
                spans.append((m.start(), m.end()))
                is_model = False
        elif first in b'{[':
            depth += 1
            expect_key = depth == 1 and first == 0x7B
        elif first in b'}]':
            depth -= 1
        elif depth == 1:  # ','
            expect_key = True
    value = orjson.dumps(model)
    for start, end in reversed(spans):
        raw = raw[:start] + value + raw[end:]
    return raw


class Native:
    """A request as the client sent it, for the providers that speak its wire
    format (`kind` in ``provider.relays``): its bytes, its parsed body (what the
    input policies read and rewrite), and the client headers forwarded. A
    subclass per wire format says how to translate it for the other providers
    and how to read its answers."""

    __slots__ = ('raw', 'body', 'headers', 'rewritten')
    cacheable = False  # whether the response cache keeps its answers passed through
    kind = ''
    dropped = ()  # fields a translation drops (named in a warning header)

    def __init__(self, raw, body, headers):
        self.raw = raw
        self.body = body
        self.headers = headers
        self.rewritten = False

    def body_for(self, model):
        """The bytes to send for `model`."""
        if self.rewritten:
            return orjson.dumps(dict(self.body, model=model))
        if model == self.body.get('model'):
            return self.raw
        return replace_model(self.raw, model)

    def relays(self, provider):
        return self.kind in provider.relays

    def allows(self, provider):
        """Whether `provider` may serve the request at all."""
        return True

    def chat_form(self):
        """The chat request the (rewritten) body translates to, for any other
        provider."""
        raise NotImplementedError


class MessagesNative(Native):
    """A ``/v1/messages`` request, for ``anthropic`` targets."""

    __slots__ = ('dropped',)
    kind = 'messages'
    cacheable = True  # its answers passed through may be cached (`assemble`, `replay`)
    answer_kind = 'message'  # what the cache calls its answer

    def __init__(self, raw, body, headers):
        super().__init__(raw, body, headers)
        self.dropped = dropped_fields(body)

    def chat_form(self):
        return parse_chat_request(to_chat_body(self.body))

    @staticmethod
    def usage(data):
        return usage_to_openai(data.get('usage'))

    @staticmethod
    def fields(data):
        return message_fields(data)

    @staticmethod
    def model_of(event):
        return message_model(event)

    @staticmethod
    def meter():
        return RelayUsage()

    @staticmethod
    def guard(stream_guard):
        return RelayGuard(stream_guard)

    @staticmethod
    def assemble(events):
        """The message a complete stream of `Event`s adds up to."""
        return message_of_events([e.data for e in events])

    @staticmethod
    def replay(message):
        """A stream of `Event`s that replays a whole message."""
        return (Event(None, data) for data in events_of_message(message))


class Relayed:
    """A complete ``message`` passed through: the upstream's bytes, and the parsed
    message (`raw` is None once a policy rewrote it)."""

    __slots__ = ('raw', 'data')

    def __init__(self, raw, data):
        self.raw = raw
        self.data = data

    def encoded(self):
        return self.raw if self.raw is not None else orjson.dumps(self.data)


class Event:
    """One server-sent event of a Messages stream: its bytes as received (None for
    an event the gateway wrote) and its parsed data."""

    __slots__ = ('raw', 'data')

    def __init__(self, raw, data):
        self.raw = raw
        self.data = data

    def encoded(self):
        if self.raw is not None:
            return self.raw
        data = orjson.dumps(self.data)
        return b'event: ' + self.data['type'].encode() + b'\ndata: ' + data + b'\n\n'


def parse_events(lines, protocol_error):
    """The `Event`s of a stream's lines (an event ends at a blank line; comments
    and events without data are skipped)."""
    held, data = [], []
    for line in lines:
        if line:
            held.append(line)
            if line.startswith(b'data:'):
                value = line[5:]
                data.append(value[1:] if value[:1] == b' ' else value)
            continue
        if not data:
            held.clear()
            continue
        try:
            parsed = orjson.loads(b'\n'.join(data))
        except orjson.JSONDecodeError:
            raise protocol_error('a stream event that is not JSON') from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get('type'), str):
            raise protocol_error('a stream event without a type')
        held.append(b'')
        held.append(b'')
        yield Event(b'\n'.join(held), parsed)
        held, data = [], []


def message_model(event):
    """The model a stream's ``message_start`` names."""
    message = event.data.get('message')
    return message.get('model') if isinstance(message, dict) else None


class RelayUsage:
    """Usage of a relayed stream, in the chat form, as its events report it (the
    text streamed is counted too, for an estimate when they report none)."""

    __slots__ = ('usage',)

    def __init__(self):
        self.usage = {}

    def __call__(self, event):
        """(the usage so far when `event` reports any, the text it carries)."""
        data = event.data
        kind = data['type']
        if kind == 'content_block_delta':
            delta = data.get('delta')
            if isinstance(delta, dict):
                text = delta.get('text') or delta.get('thinking')
                return None, text if isinstance(text, str) else None
            return None, None
        if kind == 'message_start':
            message = data.get('message')
            usage = message.get('usage') if isinstance(message, dict) else None
        elif kind == 'message_delta':
            usage = data.get('usage')
        else:
            return None, None
        if not isinstance(usage, dict):
            return None, None
        self.usage.update(usage)
        return usage_to_openai(self.usage), None


# the text delta each content block type carries: (delta type, its text field)
_HELD = {
    'text': ('text_delta', 'text'),
    'thinking': ('thinking_delta', 'thinking'),
    'tool_use': ('input_json_delta', 'partial_json'),
}


class Held:
    """One stream of text inside relayed events (an Anthropic content block, a
    Responses output text or function call) under the output policies. Its events
    are held while the policy window holds their text back, and go out as they
    came when the text released is the text received; where a policy rewrote
    it, the text released so far goes out as one event made by `make_delta`."""

    __slots__ = (
        'make_delta', 'window', 'text', 'consumed', 'sent', 'queue', 'rewritten',
        'released',
    )  # fmt: skip

    def __init__(self, window, make_delta):
        self.make_delta = make_delta
        self.window = window
        self.text = ''  # every text received
        self.consumed = 0  # of `text`, through the window
        self.sent = 0  # of `text`, in events sent
        self.queue = deque()  # (start, end, event): events not sent yet
        self.rewritten = False
        self.released = []  # the text as sent, in pieces

    @property
    def text_sent(self):
        return ''.join(self.released)

    def push(self, event, text):
        start = len(self.text)
        self.text += text
        self.queue.append((start, len(self.text), event))
        released = self.window.push(text)
        return self._release(released, len(self.text) - len(self.window.pending))

    def add(self, event):
        """An event of this block that carries no text (a signature)."""
        at = len(self.text)
        self.queue.append((at, at, event))
        return self._release('', self.consumed)

    def finish(self):
        return self._release(self.window.finish(), len(self.text))

    def _release(self, released, upto):
        self.released.append(released)
        start, self.consumed = self.consumed, upto
        queue, out = self.queue, []
        if released != self.text[start:upto]:
            self.rewritten = True
            text = self.text[self.sent : start] + released
            if text:
                out.append(self.make_delta(text))
            self.sent = upto
            while queue and queue[0][1] <= upto:
                s, e, event = queue.popleft()
                if s == e:
                    out.append(event)
            return out
        while queue and queue[0][1] <= upto:
            s, e, event = queue.popleft()
            if s >= self.sent:
                out.append(event)
            elif e > self.sent:
                out.append(self.make_delta(self.text[self.sent : e]))
            self.sent = max(self.sent, e)
        return out


def _block_delta(index, delta_type, field):
    def make(text):
        delta = {'type': delta_type, field: text}
        return Event(
            None, {'type': 'content_block_delta', 'index': index, 'delta': delta}
        )

    return make


class RelayGuard:
    """Output policies (and restores) over a relayed Messages stream: the text of
    text, thinking and tool_use blocks goes through `guard`'s windows (thinking
    signed: a redaction there blocks). Events outside those blocks pass at once."""

    __slots__ = ('guard',)

    def __init__(self, guard):
        self.guard = guard

    def filter(self, events):
        held = index = field = delta_type = None
        for event in events:
            data = event.data
            kind = data['type']
            if kind == 'content_block_start':
                block = data.get('content_block')
                block_type = block.get('type') if isinstance(block, dict) else None
                held = None
                if block_type in _HELD:
                    index = data.get('index')
                    delta_type, field = _HELD[block_type]
                    name = 'input' if block_type == 'tool_use' else block_type
                    window = self.guard.window(
                        f'content[{index}].{name}', signed=block_type == 'thinking'
                    )
                    held = Held(window, _block_delta(index, delta_type, field))
            elif held is not None and data.get('index') == index:
                if kind == 'content_block_delta':
                    delta = data.get('delta')
                    delta = delta if isinstance(delta, dict) else {}
                    text = delta.get(field)
                    if delta.get('type') == delta_type and isinstance(text, str):
                        yield from held.push(event, text)
                    else:
                        yield from held.add(event)
                    continue
                if kind == 'content_block_stop':
                    yield from held.finish()
                    held = None
            yield event
