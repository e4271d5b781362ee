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
_ROT13_WORDS = (
    ' gur ',
    ' naq ',
    ' lbh',
    ' nyy ',
    ' gb ',
    ' bs ',
    ' vf ',
    'vafgehpg',
    'cebzcg',
)
_REVERSED = (' eht ', ' dna ', ' uoy ', ' ruoy ', ' lla ', ' ot ', ' fo ')
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
    # PERF: folding deletes tag characters, so a text folding kept as long holds
    # none (a search for them costs ~70 us per 4 KB)
    if len(original) != len(folded) and _TAG.search(original):
        budget -= _tags(original[:budget], out)
    if tokens is None:
        tokens = [t for t in folded.split() if len(t) >= MIN_RUN]
    if tokens:
        budget = _bytes(folded, tokens, out, budget)
    if budget > 0 and '\\x' in folded:
        budget = _led(folded, '\\x', _ESCAPED_HEX, _escaped, 'hex', out, budget)
    if budget > 0 and '%' in folded:
        budget = _led(folded, '%', _URL, _unquoted, 'url', out, budget)
    if budget > 0 and '&#' in folded:
        budget = _led(folded, '&#', _ENTITY, _unescaped, 'html', out, budget)
    if budget > 0:
        _lines(folded, out, budget)
    return out


def _unquoted(run):
    return urllib.parse.unquote(run).encode('utf-8', 'surrogatepass')


def _unescaped(run):
    return html.unescape(run).encode('utf-8', 'surrogatepass')


def _led(text, lead, pattern, decode, kind, out, budget):
    """Runs of `pattern`, looked for only where `lead` occurs (PERF: a scan of
    the whole text by the pattern costs ~70 us per 4 KB)."""
    i = text.find(lead)
    while i >= 0 and budget > 0:
        m = pattern.match(text, i)
        if m is None:
            i = text.find(lead, i + len(lead))
            continue
        try:
            raw = decode(m.group()[: 8 * budget])
        except (ValueError, UnicodeError):
            raw = b''
        budget -= len(raw)
        if raw:
            _add(out, kind, m.start(), m.end(), raw)
        i = text.find(lead, m.end())
    return budget


_BLACK_FLAG = '\U0001f3f4'
_TAG = re.compile('[\U000e0020-\U000e007e]')
_FLAG_TAGS = re.compile('\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f?')


def _tags(original, out):
    """Tag characters read as the ASCII they stand for, in place (hidden letters
    put back into words) and as runs (a hidden sentence); how many characters
    that read."""
    text = _FLAG_TAGS.sub('', original)  # NOTE: a subdivision flag is tags too
    count = len(_TAG.findall(text))
    if count < 4:
        return 0
    out.tags = True
    shown = _TAG.sub(lambda m: chr(ord(m.group()) - 0xE0000), text)
    out.items.append(('tags', 0, 0, shown))
    for m in _TAG_RUN.finditer(text):
        out.items.append(('tags', 0, 0, shown[m.start() : m.end()]))
    return len(shown)


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


def _lines(text, out, budget):
    """Line by line: hex written as spaced bytes (on a line dense with spaces),
    then ROT13 and reversal (on a line that reads as no language, and would once
    turned)."""
    at = 0
    for line in text.split('\n'):
        start, at = at, at + len(line) + 1
        if len(line) < MIN_RUN or budget <= 0:
            continue
        line = line[:budget]
        if line.count(' ') * 4 > len(line):  # NOTE: spaced bytes: one in three
            for m in _SPACED_HEX.finditer(line):
                raw = _hex(m.group())
                budget -= len(raw)
                _add(out, 'hex', start + m.start(), start + m.end(), raw)
        lower = line.lower()
        # PERF: turned only when its letters or words say so (cheap tests first):
        # ROT13 English has its function words turned (gur, naq, lbh) or more r,
        # g, n, b than e, t, a, o; reversed English has reversed function words
        candidates = []
        if any(w in lower for w in _ROT13_WORDS) or sum(map(lower.count, 'rgnb')) > sum(
            map(lower.count, 'etao')
        ):
            candidates.append(('rot13', line.translate(_ROT13)))
        if any(w in lower for w in _REVERSED):
            candidates.append(('reversed', line[::-1]))
        if not candidates:
            continue
        share, count = english(line)
        if count < 4 or share >= 0.5:
            continue
        for kind, turned in candidates:
            # NOTE: by words gained, so an English preamble does not hide it
            gained = (english(turned)[0] - share) * count
            if gained >= max(2, 0.2 * count):
                out.items.append((kind, start, start + len(line), turned))
                budget -= len(line)
                break
