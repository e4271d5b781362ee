"""The pass-through of Anthropic's Messages API: the model replaced in the
client's bytes and nothing else; relayed events rewritten only where an output
policy changed their text, whatever the chunking."""

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegisflow.policy.engine import Policy
from aegisflow.policy.engine import PolicyViolation
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import StreamGuard
from aegisflow.policy.filters import KeywordFilter
from aegisflow.wire.relay import Event
from aegisflow.wire.relay import RelayGuard
from aegisflow.wire.relay import parse_events
from aegisflow.wire.relay import replace_model


@pytest.mark.parametrize(
    ('raw', 'top_level'),
    [
        (b'{"model":"a","messages":[{"role":"user","content":"x"}]}', 1),
        (
            b'{ "messages" : [ {"model": "a", "content": "\\"model\\": \\"a\\""} ],\n'
            b'  "model" :  "a" , "max_tokens": 5 }',
            1,
        ),
        (b'{"metadata":{"model":"a"},"mod\\u0065l":"a","tools":[["model","a"]]}', 1),
        (b'{"model":"a","model":"a"}', 2),
    ],
)
def test_only_top_level_model_values_change(raw, top_level):
    new = 'claude-"x"'
    out = replace_model(raw, new)
    before, after = json.loads(raw), json.loads(out)
    assert after.pop('model') == new
    before.pop('model')
    assert after == before
    # only the top-level values grew: by the new value's encoding less '"a"'
    grown = len(orjson.dumps(new)) - len(b'"a"')
    assert len(out) - len(raw) == top_level * grown


def test_model_replaced_in_place():
    raw = b'{"max_tokens": 5, "model": "sonnet", "messages": []}'
    assert replace_model(raw, 'claude-x') == raw.replace(b'"sonnet"', b'"claude-x"')


def _event(data):
    return Event(b'event: x\ndata: ' + orjson.dumps(data) + b'\n\n', data)


def _block_events(kind, text, cuts, index=0):
    field = {'text': 'text', 'thinking': 'thinking'}[kind]
    bounds = [0, *sorted(set(cuts)), len(text)]
    events = [
        _event(
            {
                'type': 'content_block_start',
                'index': index,
                'content_block': {'type': kind, field: ''},
            }
        )
    ]
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            delta = {'type': f'{kind}_delta', field: text[a:b]}
            events.append(
                _event({'type': 'content_block_delta', 'index': index, 'delta': delta})
            )
    if kind == 'thinking':
        delta = {'type': 'signature_delta', 'signature': 'sig'}
        events.append(
            _event({'type': 'content_block_delta', 'index': index, 'delta': delta})
        )
    events.append(_event({'type': 'content_block_stop', 'index': index}))
    return events


def _guard(words):
    policy = Policy('kw', 'output', 'redact', KeywordFilter(words))
    return RelayGuard(StreamGuard([policy], Redactor(), lambda hit: None))


TEXT = 'the plan is classified, and so is the other plan; classified twice'


@given(st.lists(st.integers(1, len(TEXT) - 1), max_size=12))
def test_relayed_text_is_rewritten_whatever_the_chunking(cuts):
    events = _block_events('text', TEXT, cuts)
    out = list(_guard(['classified']).filter(iter(events)))
    text = ''.join(
        e.data['delta']['text'] for e in out if e.data['type'] == 'content_block_delta'
    )
    assert text == TEXT.replace('classified', '[KEYWORD_1]')
    assert out[0] is events[0] and out[-1] is events[-1]


@given(st.lists(st.integers(1, len(TEXT) - 1), max_size=12))
def test_untouched_text_goes_out_as_the_same_events(cuts):
    events = _block_events('text', TEXT, cuts)
    events.insert(2, _event({'type': 'ping'}))
    out = list(_guard(['secret']).filter(iter(events)))
    assert sorted(map(id, out)) == sorted(map(id, events))
    deltas = [e for e in out if e.data['type'] == 'content_block_delta']
    assert deltas == [e for e in events if e.data['type'] == 'content_block_delta']


def test_a_redaction_inside_thinking_blocks_the_stream():
    events = _block_events('thinking', TEXT, [5, 20])
    with pytest.raises(PolicyViolation):
        list(_guard(['classified']).filter(iter(events)))


def test_thinking_without_a_hit_keeps_its_signature_last():
    events = _block_events('thinking', TEXT, [5, 20])
    out = list(_guard(['secret']).filter(iter(events)))
    assert out == events


def test_events_are_parsed_with_their_bytes():
    lines = [
        b'event: message_start',
        b'data: {"type":"message_start","message":{}}',
        b'',
        b': a comment',
        b'',
        b'event: ping',
        b'data: {"type": "ping"}',
        b'',
    ]
    events = list(parse_events(iter(lines), ValueError))
    assert [e.data['type'] for e in events] == ['message_start', 'ping']
    assert events[1].raw == b'event: ping\ndata: {"type": "ping"}\n\n'
    with pytest.raises(ValueError):
        list(parse_events(iter([b'data: {nope', b'']), ValueError))
