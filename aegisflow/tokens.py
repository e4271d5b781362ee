"""Deterministic token estimates, with no network and no tokenizer download.

A token is a run of word characters or a single other non-space character
(``\\w+|[^\\w\\s]``). That is close to real BPE counts for English prose and code,
never zero for non-empty text, and cheap (one regex scan). The mock provider's
usage is defined with it, and admission estimates use it.

Prompt tokens of a chat request follow the shape of OpenAI's published formula:
3 per message, plus the message's text tokens, plus 1 for a ``name``, plus 3 for the
reply priming; each image part counts 85 (the low-detail price), and tool
definitions count as the tokens of their compact JSON.
"""

import re

import orjson

_TOKEN = re.compile(r'\w+|[^\w\s]')
PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3
PER_IMAGE = 85


def count_tokens(text):
    return len(_TOKEN.findall(text)) if text else 0


def truncate_to_tokens(text, limit):
    """The prefix of `text` that holds its first `limit` tokens."""
    if limit <= 0:
        return ''
    for i, match in enumerate(_TOKEN.finditer(text), 1):
        if i == limit:
            return text[: match.end()]
    return text


def content_text(content):
    """The text of a message ``content`` (string or parts) and its image count."""
    if content is None:
        return '', 0
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for part in content:
        kind = part.get('type')
        if kind == 'text' or kind == 'refusal':
            texts.append(part.get(kind) or '')
        elif kind in ('image_url', 'image'):
            images += 1
    return '\n'.join(texts), images


def prompt_tokens(messages, tools=None):
    total = REPLY_PRIMING
    for msg in messages:
        text, images = content_text(msg.get('content'))
        total += PER_MESSAGE + count_tokens(text) + images * PER_IMAGE
        if msg.get('name'):
            total += PER_NAME
        for call in msg.get('tool_calls') or ():
            fn = call.get('function') or {}
            total += count_tokens(fn.get('name', '')) + count_tokens(
                fn.get('arguments', '')
            )
    if tools:
        total += count_tokens(orjson.dumps(tools).decode())
    return total
