"""Response header values made from what a client sent.

A model name reaches ``X-AegisFlow-Model`` as the client wrote it when a route
matches by glob; a header value must be printable ASCII, so anything else is
percent-encoded (and a very long value cut), never a failed response.
"""

from urllib.parse import quote

MAX_VALUE = 256


def header_value(text):
    if len(text) <= MAX_VALUE and text.isascii() and text.isprintable():
        return text
    return quote(text[:MAX_VALUE], safe=" !#$&'()*+,/:;=?@[]~")
