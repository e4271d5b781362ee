# ruff: noqa: E501 (patterns read best unbroken)
"""PII and secret detectors: a candidate pattern over folded text, then a validator
that must pass. Only what can be validated is reported, and validated strictly.

Every detector runs on `aegisflow.policy.normalize` output (ASCII digits, one space
for any whitespace, invisible characters gone), so other scripts' digits, fullwidth
forms and zero-width characters inside a number do not hide it.

Kinds: ``email``, ``phone``, ``credit_card``, ``us_ssn``, ``us_itin``, ``iban``,
``ip_address``, ``api_key``, ``jwt``, ``private_key``, ``aba_routing``.
"""

import base64
import binascii
import ipaddress
import re
import string

import orjson

from aegisflow.policy.normalize import AsciiMap
from aegisflow.policy.normalize import Folded

# -- validators ----------------------------------------------------------------------


def luhn(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer(digits):
    """The card network whose IIN range and length `digits` fit, or None."""
    n = len(digits)
    two, three, four, six = (int(digits[:k]) for k in (2, 3, 4, 6))
    if digits[0] == '4' and n in (13, 16, 19):
        return 'visa'
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return 'mastercard'
    if two in (34, 37) and n == 15:
        return 'amex'
    if (four == 6011 or 644 <= three <= 649 or two == 65) and 16 <= n <= 19:
        return 'discover'
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return 'jcb'
    if (300 <= three <= 305 or two in (36, 38, 39) or three == 309) and 14 <= n <= 19:
        return 'diners'
    if two == 62 and 16 <= n <= 19:
        return 'unionpay'
    if 222100 <= six <= 272099 and n == 16:
        return 'mastercard'
    return None


_SSN_SAMPLES = {'078051120', '219099999', '457555462', '123456789', '987654320'}


def valid_ssn(area, group, serial):
    if area in ('000', '666') or area[0] == '9':
        return False
    if group == '00' or serial == '0000':
        return False
    digits = area + group + serial
    return digits not in _SSN_SAMPLES and len(set(digits)) > 1


_ITIN_GROUPS = (
    set(range(50, 66)) | set(range(70, 89)) | {90, 91, 92} | set(range(94, 100))
)

# IBAN length per country (the ISO 13616 registry)
IBAN_LENGTHS = {
    'AD': 24, 'AE': 23, 'AL': 28, 'AT': 20, 'AZ': 28, 'BA': 20, 'BE': 16, 'BG': 22,
    'BH': 22, 'BI': 27, 'BR': 29, 'BY': 28, 'CH': 21, 'CR': 22, 'CY': 28, 'CZ': 24,
    'DE': 22, 'DJ': 27, 'DK': 18, 'DO': 28, 'EE': 20, 'EG': 29, 'ES': 24, 'FI': 18,
    'FK': 18, 'FO': 18, 'FR': 27, 'GB': 22, 'GE': 22, 'GI': 23, 'GL': 18, 'GR': 27,
    'GT': 28, 'HR': 21, 'HU': 28, 'IE': 22, 'IL': 23, 'IQ': 23, 'IS': 26, 'IT': 27,
    'JO': 30, 'KW': 30, 'KZ': 20, 'LB': 28, 'LC': 32, 'LI': 21, 'LT': 20, 'LU': 20,
    'LV': 21, 'LY': 25, 'MC': 27, 'MD': 24, 'ME': 22, 'MK': 19, 'MN': 20, 'MR': 27,
    'MT': 31, 'MU': 30, 'NI': 28, 'NL': 18, 'NO': 15, 'OM': 23, 'PK': 24, 'PL': 28,
    'PS': 29, 'PT': 25, 'QA': 29, 'RO': 24, 'RS': 22, 'RU': 33, 'SA': 24, 'SC': 31,
    'SD': 18, 'SE': 24, 'SI': 19, 'SK': 24, 'SM': 27, 'SO': 23, 'ST': 25, 'SV': 28,
    'TL': 23, 'TN': 24, 'TR': 26, 'UA': 29, 'VA': 22, 'VG': 24, 'XK': 20, 'YE': 30,
}  # fmt: skip


def valid_iban(compact):
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    number = ''.join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def valid_aba(d):
    if not (0 <= int(d[:2]) <= 12 or 21 <= int(d[:2]) <= 32 or 61 <= int(d[:2]) <= 72
            or d[:2] == '80'):  # fmt: skip
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * k for c, k in zip(d, w, strict=True)) % 10 == 0


def _b64json(part):
    try:
        raw = base64.urlsafe_b64decode(part + '=' * (-len(part) % 4))
        return orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None


# -- detectors -----------------------------------------------------------------------
# Each: (kind, compiled pattern, check(match) -> bool). Patterns are ASCII and run on
# folded text; a check may reject a candidate.


def _digits(s):
    return ''.join(c for c in s if c.isdigit())


_CARD = re.compile(r'(?<![\d.-])\d(?:[ \-.]?\d){12,18}(?![\d])')


def _card(m):
    text = m.group()
    seps = {c for c in text if not c.isdigit()}
    if len(seps) > 1:
        return False
    if seps and min(len(g) for g in re.split(r'[ .\-]', text)[:-1]) < 3:
        return False  # "1 2 3 4 ..." or "41 11 ..." is a list of numbers, not a card
    digits = _digits(text)
    return len(set(digits)) > 1 and luhn(digits) and card_issuer(digits) is not None


_SSN = re.compile(r'(?<![\d-])(\d{3})([ -]?)(\d{2})\2(\d{4})(?![\d-])')
_SSN_CONTEXT = re.compile(r'(?i)\b(ssn|social security|social-security|ss#|ss no)\b')


def _ssn(m, text):
    area, sep, group, serial = m.groups()
    if area[0] == '9':
        return False
    if not valid_ssn(area, group, serial):
        return False
    if sep:
        return True
    # nine bare digits only with a context word just before
    return _SSN_CONTEXT.search(text, max(0, m.start() - 40), m.start()) is not None


_ITIN = re.compile(r'(?<![\d-])(9\d{2})([ -]?)(\d{2})\2(\d{4})(?![\d-])')


def _itin(m, text):
    area, sep, group, serial = m.groups()
    if int(group) not in _ITIN_GROUPS or serial == '0000':
        return False
    if sep:
        return True
    return (
        re.search(r'(?i)\b(itin|taxpayer)\b', text[max(0, m.start() - 40) : m.start()])
        is not None
    )


_EMAIL = re.compile(
    r'(?<![A-Za-z0-9._%+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?'
    r'@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])'
)


def _email(m):
    local, _, domain = m.group().partition('@')
    return len(m.group()) <= 254 and '..' not in local and len(local) <= 64


# NANP: (NXX) NXX-XXXX with optional +1; international: + country code and 7-14 digits
_PHONE = re.compile(
    r'(?<![\w+])(?:'
    r'(?:\+?1[ .\-]?)?\(?([2-9]\d{2})\)?[ .\-]?([2-9]\d{2})[ .\-]?(\d{4})'
    r'|\+(?!1\b)([1-9]\d{0,2})[ .\-]?((?:\(?\d{1,4}\)?[ .\-]?){2,5}\d{2,4})'
    r')(?![\w])'
)


def _phone(m):
    text = m.group()
    if m.group(1) is not None:
        area, exchange = m.group(1), m.group(2)
        if area[1:] == '11' or exchange[1:] == '11':
            return False  # N11 codes are services, not numbers
        seps = {c for c in text if c in ' .-'}
        bare = not seps and '(' not in text
        if bare and not text.startswith('+'):
            return False  # ten bare digits: an id as often as a phone
        return True
    digits = _digits(text)
    return 8 <= len(digits) <= 15


_IPV4 = re.compile(r'(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d{1,2})?(?![\w.]|\.\d)')
_IPV6 = re.compile(
    r'(?<![\w:])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?:/\d{1,3})?(?![\w:])'
)


def _ip(m, text):
    try:
        ipaddress.ip_address(m.group(1))
    except ValueError:
        return False
    before = text[max(0, m.start() - 12) : m.start()].lower().rstrip()
    return not before.endswith(_NOT_IP_BEFORE)


# words after which a dotted quad is a version or a section number, not an address
_NOT_IP_BEFORE = (
    'v',
    'version',
    'ver',
    'section',
    'chapter',
    'clause',
    'rule',
    'step',
    'item',
    'figure',
    'table',
    'release',
    '\u00a7',
)


def _ip6(m, text):
    candidate = m.group(1)
    if candidate.count(':') < 2 or not any(c.isalnum() for c in candidate):
        return False
    return _ip(m, text)


_API_KEY = re.compile(
    r'(?<![A-Za-z0-9_\-])(?:'
    r'sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_\-]{20,200}'
    r'|(?:AKIA|ASIA)[0-9A-Z]{16}'
    r'|gh[pousr]_[A-Za-z0-9]{36,255}'
    r'|github_pat_[A-Za-z0-9_]{22,255}'
    r'|xox[abprs]-[A-Za-z0-9\-]{10,200}'
    r'|AIza[0-9A-Za-z_\-]{35}'
    r'|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,200}'
    r'|glpat-[0-9A-Za-z_\-]{20}'
    r'|hf_[A-Za-z]{34}'
    r'|sk-af-[A-Za-z0-9_\-]{20,200}'
    r')(?![A-Za-z0-9_\-])'
)


def _api_key(m):
    token = m.group()
    if token.startswith(('sk-', 'sk_', 'rk_', 'pk_')):
        tail = token.rsplit('-', 1)[-1] if token.startswith('sk-') else token[8:]
        # a real key mixes letters and digits; prose like sk-this-is-not-a-key does not
        return any(c.isdigit() for c in tail) and any(c.isalpha() for c in tail)
    return True


_JWT = re.compile(
    r'(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{0,1000}'
)


def _jwt(m):
    header = _b64json(m.group().split('.', 1)[0])
    return isinstance(header, dict) and ('alg' in header or 'typ' in header)


_PRIVATE_KEY = re.compile(
    r'-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{0,8000}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----'
    r'|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----'
)

_ABA = re.compile(r'(?<!\d)(\d{9})(?!\d)')


def _aba(m, text):
    if not valid_aba(m.group(1)):
        return False
    before = text[max(0, m.start() - 40) : m.start()].lower()
    return any(w in before for w in ('routing', 'aba', 'rtn', 'transit'))


_IBAN = re.compile(
    r'(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})(?![A-Za-z0-9])'
)


def _iban(m):
    """The end of a valid IBAN at the candidate's start (a candidate may run into a
    following word of capitals: it is cut at the country's registry length), or
    False."""
    text = m.group(1)
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return False
    ends = [i + 1 for i, c in enumerate(text) if c != ' ']
    if len(ends) < length:
        return False
    i = ends[length - 1] - 1
    text = text[: i + 1]
    if ' ' in text and not _IBAN_GROUPS.fullmatch(text):
        return False
    return m.start(1) + i + 1 if valid_iban(text.replace(' ', '')) else False


_IBAN_GROUPS = re.compile(r'[A-Z]{2}\d{2}(?: [A-Z0-9]{4})*(?: [A-Z0-9]{1,4})?')


# kind -> (pattern, check, check wants the whole text)
DETECTORS = {
    'email': (_EMAIL, _email, False),
    'phone': (_PHONE, _phone, False),
    'credit_card': (_CARD, _card, False),
    'us_ssn': (_SSN, _ssn, True),
    'us_itin': (_ITIN, _itin, True),
    'iban': (_IBAN, _iban, False),
    'ip_address': (_IPV4, _ip, True),
    'ipv6': (_IPV6, _ip6, True),
    'api_key': (_API_KEY, _api_key, False),
    'jwt': (_JWT, _jwt, False),
    'private_key': (_PRIVATE_KEY, None, False),
    'aba_routing': (_ABA, _aba, True),
}
KINDS = tuple(k for k in DETECTORS if k != 'ipv6')
DEFAULT_KINDS = (
    'email', 'phone', 'credit_card', 'us_ssn', 'iban', 'ip_address', 'api_key', 'jwt',
    'private_key',
)  # fmt: skip
# a validated kind wins an overlap with a weaker one (a card is not also a phone)
PRIORITY = {
    'private_key': 0, 'jwt': 1, 'api_key': 2, 'credit_card': 3, 'iban': 4,
    'us_ssn': 5, 'us_itin': 6, 'aba_routing': 7, 'email': 8, 'ip_address': 9, 'phone': 10,
}  # fmt: skip
# what a redaction writes in place of each kind
LABELS = {'ipv6': 'IP_ADDRESS'}


# -- where to look ---------------------------------------------------------------
# PERF: a regex that starts with a character class costs a match attempt at every
# position; over 4 KB that is ~0.1-0.3 ms per kind. So each kind runs only where it
# can match: numeric kinds in small windows around runs of digits (found on a
# "shape" of the text in which every digit is 0, so the search jumps from digit to
# digit), the rest behind a literal each needs ('@', 'eyJ', known key prefixes).

NUMERIC = frozenset(
    ('phone', 'credit_card', 'us_ssn', 'us_itin', 'ip_address', 'aba_routing')
)
_SHAPE = AsciiMap(
    dict.fromkeys('0123456789', '0') | dict.fromkeys(string.ascii_uppercase, 'A')
)
# nine or more digits, at most two separators between two digits; a '+' and seven or
# more (an international phone number); four dotted groups (an IPv4 address)
_RUN = re.compile(r'0(?:[ \-.()/]{0,2}0){8,}')
_PLUS_RUN = re.compile(r'\+[ (]{0,2}0(?:[ \-.()/]{0,2}0){6,}')
_IP_RUN = re.compile(r'0{1,3}\.0{1,3}\.0{1,3}\.0{1,3}')
_IBAN_SHAPE = 'AA00'
KEY_PREFIXES = _KEY_PREFIXES = (
    'sk-', 'sk_', 'rk_', 'pk_', 'AKIA', 'ASIA', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_',
    'github_pat_', 'xox', 'AIza', 'glpat-', 'hf_',
)  # fmt: skip
_LOOK_BACK = 48  # context before a run: an SSN keyword, a '+' or '(' of a phone
_IBAN_SPAN = 50


def _numeric_kinds(run, kinds):
    """The numeric kinds a run of nine or more digits (its shape) can be."""
    digits = run.count('0')
    out = [k for k in ('us_ssn', 'us_itin', 'aba_routing') if k in kinds]
    if 'phone' in kinds and digits >= 10:
        out.append('phone')
    if digits >= 13 and 'credit_card' in kinds:
        out.append('credit_card')
    return out


def _numeric(text, shape, kinds, found):
    """Numeric kinds, each looked for in a window around a run of digits."""
    n = len(text)
    runs = []
    if kinds - {'ip_address'}:
        runs += [(m, _numeric_kinds(m.group(), kinds)) for m in _RUN.finditer(shape)]
    if 'phone' in kinds and '+' in shape:
        runs += [(m, ('phone',)) for m in _PLUS_RUN.finditer(shape)]
    if 'ip_address' in kinds and '.' in shape:
        runs += [(m, ('ip_address',)) for m in _IP_RUN.finditer(shape)]
    for m, run_kinds in runs:
        # +4: an address's /prefix follows its last group
        start, end = max(0, m.start() - _LOOK_BACK), min(n, m.end() + 4)
        for kind in run_kinds:
            _scan(kind, text, start, end, found)


def _scan(kind, text, start, end, found):
    pattern, check, whole = DETECTORS[kind]
    label = 'ip_address' if kind == 'ipv6' else kind
    for m in pattern.finditer(text, start, end):
        ok = True if check is None else check(m, text) if whole else check(m)
        if ok is True:
            found.add((label, m.start(), m.end()))
        elif ok:  # the check moved the end
            found.add((label, m.start(), ok))


_HEX = frozenset(string.hexdigits + ':')
_SHORTEST_KEY = 15


def _maybe_key(text, folded):
    """Whether a long token holds a known key prefix (keys never hold spaces)."""
    if folded is None:
        folded = Folded(text)
    found = folded.cache.get('key')
    if found is None:
        joined = ' '.join(folded.long_tokens())
        found = folded.cache['key'] = bool(joined) and any(
            p in joined for p in _KEY_PREFIXES
        )
    return found


def _ipv6(text, found):
    """IPv6 candidates: windows around colons between hex digits."""
    n = len(text)
    at = text.find(':')
    while at >= 0:
        if 0 < at < n - 1 and text[at - 1] in _HEX and text[at + 1] in _HEX:
            _scan('ipv6', text, max(0, at - 40), min(n, at + 46), found)
        at = text.find(':', at + 1)


def find(text, kinds, folded=None):
    """[(kind, start, end)] of validated PII in folded `text`, overlaps resolved by
    `PRIORITY` (the stronger kind keeps its span). `folded`: the Folded `text` came
    from, whose cache keeps what several PII policies on one text share."""
    found = set()
    cache = folded.cache if folded is not None else {}
    n = len(text)
    kinds = frozenset(kinds)
    if 'email' in kinds and '@' in text:
        at = text.find('@')
        while at >= 0:
            # an address holds no space: it lies between 64 characters before its @
            # and the next space
            end = text.find(' ', at)
            _scan('email', text, max(0, at - 65), n if end < 0 else end, found)
            at = text.find('@', at + 1)
    if 'api_key' in kinds and _maybe_key(text, folded):
        _scan('api_key', text, 0, n, found)
    if 'jwt' in kinds and 'eyJ' in text:
        _scan('jwt', text, 0, n, found)
    if 'private_key' in kinds and '-----BEGIN' in text:
        _scan('private_key', text, 0, n, found)
    if 'ipv6' in kinds and ':' in text:
        _ipv6(text, found)
    numeric = kinds & NUMERIC
    if numeric or 'iban' in kinds:
        shape = cache.get('shape')
        if shape is None:
            shape = cache['shape'] = _SHAPE(text)
        if numeric:
            _numeric(text, shape, numeric, found)
        if 'iban' in kinds:
            at = shape.find(_IBAN_SHAPE)
            while at >= 0:
                _scan('iban', text, max(0, at - 1), min(n, at + _IBAN_SPAN), found)
                at = shape.find(_IBAN_SHAPE, at + _IBAN_SPAN)
    if len(found) < 2:
        return list(found)
    ranked = sorted(found, key=lambda f: (PRIORITY[f[0]], f[1], -f[2]))
    kept = []
    for f in ranked:
        if all(f[2] <= k[1] or f[1] >= k[2] for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f[1])
    return kept
