"""Texts hidden in a prompt by an encoding, decoded once for the injection detector.

The shared normaliser (`aegisflow.policy.normalize`) stays as every filter reads it;
this pass is the injection detector's own. It looks only where a text looks
encoded, decodes each candidate once, and is bounded: at most `MAX_DECODED`
characters decoded per text, candidates of at least `MIN_RUN` characters.

- Unicode tag characters (U+E0020-U+E007E, invisible): the ASCII they spell; their
  presence in a prompt is itself suspicious (`TAGS`);
- base64, base32, hexadecimal in either case (runs, spaced bytes, ``\\x`` escapes);
- URL escapes (``%69%67``) and HTML character references (``&#105;``);
- ROT13 and reversed text, tried only on a text that reads as no language but would
  read as English once turned: most of its words are unknown, and many become
  common English words.

Leetspeak needs no pass of its own: the detector reads the leet skeleton.
"""

import base64
import binascii
import html
import re
import urllib.parse

MAX_DECODED = 64 * 1024
MIN_RUN = 16
TAGS = 'tag_characters'

_TAG_RUN = re.compile('[\U000e0020-\U000e007e]{4,}')
_B64 = re.compile(r'[A-Za-z0-9+/]{24,}={0,2}|[A-Za-z0-9_\-]{24,}={0,2}')
_B32 = re.compile(r'\b[A-Z2-7]{16,}={0,6}')
_HEX = re.compile(r'\b(?:[0-9a-fA-F]{2}){12,}\b')
_SPACED_HEX = re.compile(r'\b[0-9a-fA-F]{2}(?:[\s,:]+[0-9a-fA-F]{2}){11,}\b')
_ESCAPED_HEX = re.compile(r'(?:\\x[0-9a-fA-F]{2}){8,}')
_URL = re.compile(r'(?:%[0-9a-fA-F]{2}){6,}')
_ENTITY = re.compile(r'(?:&#x?[0-9a-fA-F]{1,6};){6,}')
_WORD = re.compile(r'[a-z]+')
_ROT13 = str.maketrans(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
    'nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZabcdefghijklm',
)
# common English words: a text made of them reads as English
COMMON = frozenset(
    """
    a about above after again all also am an and any are as at be before being
    below both but by can could did do does doing down during each every few for
    from further had has have having he her here him his how i if in into is it its
    just know like make me more most must my no nor not now of off on once only or
    other our out over own please previous prior said same say she should so some
    such tell than that the their them then there these they this those through to
    too under until up very want was we were what when where which while who why
    will with would you your instructions instruction ignore system prompt rules
    secret password reveal print output write show answer question task user
    assistant forget disregard new now follow following everything anything
    """.split()
)


def _printable(raw):
    """`raw` as text when it is mostly printable UTF-8, else None."""
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c in '\n\t' for c in text) < 0.9 * len(text):
        return None
    return text


def _b64(s):
    s = s.rstrip('=')
    alt = '-' in s or '_' in s
    s += '=' * (-len(s) % 4)
    return (base64.urlsafe_b64decode if alt else base64.b64decode)(s)


def _b32(s):
    s = s.rstrip('=')
    return base64.b32decode(s + '=' * (-len(s) % 8))


def _capped(run, budget):
    """The start of an encoded run that decodes to about `budget` bytes at most
    (a multiple of 8 characters: whole base64, base32 and hex groups)."""
    return run if len(run) <= 2 * budget else run[: 2 * budget // 8 * 8]


def _hex(s):
    return bytes.fromhex(re.sub(r'[^0-9a-fA-F]', '', s))


def _escaped(s):
    return bytes.fromhex(s.replace('\\x', ''))


_BYTES = (
    ('base64', _B64, _b64),
    ('base32', _B32, _b32),
    ('hex', _HEX, _hex),
)


def english(text):
    """(share of words that are common English words, words counted)."""
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0, 0
    return sum(w in COMMON for w in words) / len(words), len(words)


class Decoded:
    """What a text hides: ``items`` [(kind, start, end, text)] and whether it holds
    Unicode tag characters (``tags``)."""

    __slots__ = ('items', 'tags')

    def __init__(self):
        self.items = []
        self.tags = False


def hidden(original, folded, tokens=None):
    """The `Decoded` of a text: `original` as the client sent it (tag characters
    are still there), `folded` the normalised text (offsets of the results),
    `tokens` its whitespace-separated tokens of `MIN_RUN` characters or more (when
    already known)."""
    out = Decoded()
    budget = MAX_DECODED
    if not original.isascii():
        for m in _TAG_RUN.finditer(original):
            if m.start() and original[m.start() - 1] == _BLACK_FLAG:
                continue  # NOTE: a subdivision flag (Scotland, Wales) is tags too
            out.tags = True
            text = ''.join(chr(ord(c) - 0xE0000) for c in m.group())
            out.items.append(('tags', 0, 0, text))
            budget -= len(text)
    if tokens is None:
        tokens = [t for t in folded.split() if len(t) >= MIN_RUN]
    if tokens:
        budget = _bytes(folded, tokens, out, budget)
    if budget > 0 and ('\\x' in folded or _SPACED_HEX.search(folded)):
        budget = _spaced(folded, out, budget)
    if budget > 0 and ('%' in folded or '&#' in folded):
        budget = _escapes(folded, out, budget)
    if budget > 0:
        _turned(folded, out, budget)
    return out


_BLACK_FLAG = '\U0001f3f4'


def _add(out, kind, start, end, raw):
    inner = _printable(raw)
    if inner is not None and english(inner)[0] >= 0.2:
        out.items.append((kind, start, end, inner))


def _bytes(text, tokens, out, budget):
    """base64, base32 and plain hex runs inside long tokens."""
    for token in tokens:
        at = text.find(token)
        for kind, pattern, decode in _BYTES:
            for m in pattern.finditer(token):
                if budget <= 0:
                    return budget
                try:
                    raw = decode(_capped(m.group(), budget))
                except (ValueError, binascii.Error):
                    continue
                budget -= len(raw)
                _add(out, kind, at + m.start(), at + m.end(), raw)
    return budget


def _spaced(text, out, budget):
    """Hex written as spaced bytes or ``\\x`` escapes."""
    for pattern, decode in ((_SPACED_HEX, _hex), (_ESCAPED_HEX, _escaped)):
        for m in pattern.finditer(text):
            if budget <= 0:
                return budget
            try:
                raw = decode(m.group()[: 4 * budget])
            except ValueError:
                continue
            budget -= len(raw)
            _add(out, 'hex', m.start(), m.end(), raw)
    return budget


def _escapes(text, out, budget):
    for kind, pattern, decode in (
        ('url', _URL, urllib.parse.unquote),
        ('html', _ENTITY, html.unescape),
    ):
        for m in pattern.finditer(text):
            if budget <= 0:
                return budget
            inner = decode(m.group()[: 8 * budget])[:budget]
            budget -= len(inner)
            out.items.append((kind, m.start(), m.end(), inner))
    return budget


def _turned(text, out, budget):
    """ROT13 and reversal, line by line, for lines that read as no language (and
    would once turned)."""
    at = 0
    for line in text.split('\n'):
        start, at = at, at + len(line) + 1
        if len(line) < MIN_RUN or budget <= 0:
            continue
        line = line[:budget]
        share, count = english(line)
        if count < 4 or share >= 0.25:
            continue
        for kind, turned in (
            ('rot13', line.translate(_ROT13)),
            ('reversed', line[::-1]),
        ):
            if english(turned)[0] >= max(0.35, share + 0.25):
                out.items.append((kind, start, start + len(line), turned))
                budget -= len(line)
                break
