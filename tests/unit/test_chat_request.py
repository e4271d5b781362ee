import pytest

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import InvalidRequest

U = {'role': 'user', 'content': 'x'}
TOOL = {'type': 'function', 'function': {'name': 'f', 'parameters': {'type': 'object'}}}


def body(**kw):
    return {'model': 'm', 'messages': [U], **kw}


@pytest.mark.parametrize(
    'b, param, words',
    [
        (
            body(messages=[{'role': 'user', 'content': [{'type': 'text', 'text': 5}]}]),
            'messages[0].content[0].text',
            'expected a string, but got an integer',
        ),
        (
            body(
                messages=[
                    {
                        'role': 'user',
                        'content': [{'type': 'image_url', 'image_url': {}}],
                    }
                ]
            ),
            'messages[0].content[0].image_url.url',
            'expected a string, but got null',
        ),
        (
            body(
                messages=[
                    {
                        'role': 'user',
                        'content': [
                            {
                                'type': 'image_url',
                                'image_url': {'url': 'u', 'detail': 'max'},
                            }
                        ],
                    }
                ]
            ),
            'messages[0].content[0].image_url.detail',
            'auto, low or high',
        ),
        (
            body(messages=[{'role': 'system', 'content': [{'type': 'image_url'}]}]),
            'messages[0].content[0].type',
            'expected one of text',
        ),
        (
            body(messages=[{'role': 'assistant'}]),
            'messages[0].content',
            'Missing required',
        ),
        (
            body(
                messages=[
                    {'role': 'assistant', 'content': None, 'tool_calls': [{'id': 'c'}]}
                ]
            ),
            'messages[0].tool_calls[0].function',
            'expected an object',
        ),
        (
            body(messages=[{'role': 'tool', 'content': 'r'}]),
            'messages[0].tool_call_id',
            'Missing required',
        ),
        (body(messages=[{'content': 'x'}]), 'messages[0].role', 'Missing required'),
        (body(messages=['hi']), 'messages[0]', 'expected an object, but got a string'),
        (body(messages={'role': 'user'}), 'messages', 'an array of message objects'),
        (
            body(stream_options={'include_usage': True}),
            'stream_options',
            "'stream' is true",
        ),
        (
            body(stream=True, stream_options={'include_usage': 1}),
            'stream_options.include_usage',
            'expected a boolean',
        ),
        (body(stop=['a', 'b', 'c', 'd', 'e']), 'stop', 'at most 4'),
        (body(stop=[1]), 'stop[0]', 'expected a string'),
        (body(tool_choice='auto'), 'tool_choice', "'tools' are specified"),
        (
            body(tools=[TOOL], tool_choice='sometimes'),
            'tool_choice',
            'none, auto, required',
        ),
        (
            body(
                tools=[TOOL],
                tool_choice={'type': 'function', 'function': {'name': 'g'}},
            ),
            'tool_choice.function.name',
            "no tool named 'g'",
        ),
        (
            body(tools=[{'type': 'function', 'function': {'name': 'bad name'}}]),
            'tools[0].function.name',
            'letters, digits',
        ),
        (
            body(
                tools=[
                    {'type': 'function', 'function': {'name': 'f', 'parameters': []}}
                ]
            ),
            'tools[0].function.parameters',
            'expected an object',
        ),
        (body(tools=TOOL), 'tools', 'an array of tool objects'),
        (body(response_format={'type': 'yaml'}), 'response_format.type', 'json_schema'),
        (
            body(response_format={'type': 'json_schema', 'json_schema': {}}),
            'response_format.json_schema.name',
            'Missing required',
        ),
        (body(top_logprobs=3), 'top_logprobs', "'logprobs' to be true"),
        (body(logit_bias={'50256': 200}), 'logit_bias.50256', '-100 to 100'),
        (body(top_p=1.5), 'top_p', 'from 0 to 1'),
        (body(presence_penalty='high'), 'presence_penalty', 'expected a number'),
        (body(user=5), 'user', 'expected a string'),
        (body(model='  '), 'model', 'non-empty'),
    ],
)
def test_chat_request_rejects_with_param(b, param, words):
    with pytest.raises(InvalidRequest) as exc:
        parse_chat_request(b)
    assert exc.value.param == param
    assert words in exc.value.message
    assert exc.value.status == 400


def test_chat_request_accepts_the_whole_api():
    b = body(
        messages=[
            {'role': 'developer', 'content': 'be brief'},
            {'role': 'system', 'content': [{'type': 'text', 'text': 'sys'}]},
            {
                'role': 'user',
                'name': 'ann',
                'content': [
                    {'type': 'text', 'text': 'look'},
                    {
                        'type': 'image_url',
                        'image_url': {
                            'url': 'data:image/png;base64,AA',
                            'detail': 'low',
                        },
                    },
                ],
            },
            {
                'role': 'assistant',
                'content': None,
                'tool_calls': [
                    {
                        'id': 'c1',
                        'type': 'function',
                        'function': {'name': 'f', 'arguments': '{}'},
                    }
                ],
            },
            {'role': 'tool', 'tool_call_id': 'c1', 'content': 'done'},
        ],
        tools=[TOOL, {'type': 'custom', 'custom': {'name': 'grammar'}}],
        tool_choice={'type': 'function', 'function': {'name': 'f'}},
        parallel_tool_calls=False,
        response_format={
            'type': 'json_schema',
            'json_schema': {'name': 's', 'schema': {'type': 'object'}, 'strict': True},
        },
        n=2,
        stop='END',
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        seed=1,
        user='u',
        stream=True,
        stream_options={'include_usage': True},
        logprobs=True,
        top_logprobs=2,
        logit_bias={'1': -5},
        metadata={'k': 'v'},
        reasoning_effort='low',
        brand_new_field=[1, 2],
    )
    r = parse_chat_request(b)
    assert r.stream and r.include_usage and r.n == 2
    assert r.stop == ('END',) and r.max_tokens == 50
    assert r.body['brand_new_field'] == [1, 2]
