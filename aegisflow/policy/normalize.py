"""The one normalisation step every filter reads through.

``fold(text)`` maps each character of the original text to zero or more characters:

- NFKC, character by character (fullwidth, circled, mathematical and other
  compatibility forms fold to their plain letters and digits: ``４１１１`` → ``4111``);
- invisible characters removed: every format character (category Cf: zero-width
  space and joiners, word joiner, BOM, soft hyphen, bidi controls, the tag block
  U+E0000-E007F), variation selectors, the combining grapheme joiner and the Hangul
  fillers;
- every Unicode decimal digit mapped to its ASCII digit (Arabic-Indic, Devanagari, ...);
- every whitespace character mapped to one ASCII space (runs are not collapsed: the
  filters match ``\\s+`` between words).

Character by character rather than over the whole string so that each output
character comes from exactly one input character: `Folded.span` maps a match in the
folded text back to the original characters it covers (invisible characters inside
a match included), which is where redaction writes. Work is done by ``str.translate``
over a table that learns each new character once, so the cost is C-speed per
character; ASCII text is returned as is.

``Folded.latin()`` is for PII: the same look-alikes read as Latin letters, case
kept, one character for one.

``skeleton(folded)`` is for keyword matching only: one character for each folded
character (so offsets are shared), lower-cased, accents stripped and common
confusables (Cyrillic and Greek look-alikes of Latin letters, digit look-alikes)
mapped to the Latin letter they imitate.
"""

import unicodedata

_INVISIBLE = (
    {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180E}
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)

# look-alikes of Latin letters (lower case, after lower()); a reviewed subset of
# Unicode's confusables.txt covering the scripts attacks use in practice
_CONFUSABLES = {
    # Cyrillic
    'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o',
    'р': 'p', 'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ї': 'i',
    'ј': 'j', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ɡ': 'g', 'һ': 'h', 'ӏ': 'l', 'ո': 'n',
    # Greek
    'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o',
    'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w', 'ϲ': 'c', 'ϳ': 'j',
    # Latin look-alikes and leetspeak-style digits inside words are left to the
    # injection heuristics; these are letter forms only
    'ı': 'i', 'ȷ': 'j', 'ł': 'l', 'ø': 'o', 'đ': 'd', 'ħ': 'h', 'ŧ': 't',
}  # fmt: skip


# the same look-alikes, case kept: for values whose case matters (keys, JWTs, IBANs),
# where the lower-cased skeleton will not do. Upper-case forms by their own look
# (Greek capital eta looks like H, not like the n its small letter imitates).
_LATIN_UPPER = {
    # Cyrillic
    'А': 'A', 'В': 'B', 'Е': 'E', 'Ё': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O',
    'Р': 'P', 'С': 'C', 'Т': 'T', 'У': 'Y', 'Х': 'X', 'Ѕ': 'S', 'І': 'I', 'Ї': 'I',
    'Ј': 'J', 'Ԛ': 'Q', 'Ԝ': 'W', 'Һ': 'H', 'Ӏ': 'I',
    # Greek
    'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M',
    'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}  # fmt: skip
_LATIN_OF = {**_CONFUSABLES, **_LATIN_UPPER}
_LATIN_CHARS = frozenset(_LATIN_OF)
assert all(len(v) == 1 for v in _LATIN_OF.values())  # offsets are kept


def _fold_char(code):
    ch = chr(code)
    if code in _INVISIBLE or unicodedata.category(ch) == 'Cf':
        return None
    if ch.isspace():
        return ' '
    out = unicodedata.normalize('NFKC', ch)
    if out.isascii() and not out.isspace():
        return out
    parts = []
    for c in out:
        if c.isspace():
            parts.append(' ')
        elif c.isdecimal() and not c.isascii():
            parts.append(str(unicodedata.decimal(c)))
        elif unicodedata.category(c) != 'Cf':
            parts.append(c)
    return ''.join(parts)


class _FoldTable(dict):
    """str.translate table that computes (and keeps) each character's folding the
    first time it is seen. ASCII characters other than whitespace map to themselves
    and are never looked up (see `fold`)."""

    def __missing__(self, code):
        out = _fold_char(code)
        if out == chr(code):
            out = code  # NOTE: identity kept as an int: translate copies it as is
        self[code] = out
        return out


_FOLD = _FoldTable()
for _c in range(128):
    _FOLD[_c] = ' ' if chr(_c).isspace() else _c


def _skeleton_char(code):
    ch = chr(code)
    low = ch.lower()
    if len(low) != 1:
        low = ch
    if low in _CONFUSABLES:
        return _CONFUSABLES[low]
    if low.isascii():
        return low
    base = unicodedata.normalize('NFKD', low)[:1].lower()
    if base.isascii() and base.isalpha():
        return base
    return low


class _SkeletonTable(dict):
    def __missing__(self, code):
        out = _skeleton_char(code)
        self[code] = out
        return out


_SKELETON = _SkeletonTable()


class Folded:
    """A text and its folded form, with the way back from one to the other."""

    __slots__ = ('original', 'text', '_starts', '_skeleton', 'cache')

    def __init__(self, original):
        self.original = original
        if original.isascii():
            # PERF: only whitespace can change, one character for one
            self.text = (
                original.translate(_FOLD) if _has_odd_space(original) else original
            )
            self._starts = None  # identity offsets
        else:
            self.text, same = _fold_mixed(original)
            self._starts = None if same else False  # False: mapped when asked
        self._skeleton = None
        self.cache = {}  # what filters derive from the text, computed once for all

    @property
    def identity(self):
        """Whether offsets in `text` are offsets in `original`."""
        return self._starts is None

    def skeleton(self):
        if self._skeleton is None:
            text = self.text
            self._skeleton = text.lower() if text.isascii() else _skeleton_mixed(text)
        return self._skeleton

    def leet(self):
        """The skeleton with leetspeak digits and signs read as letters (``1gn0re``
        reads ``ignore``); same offsets (cached)."""
        found = self.cache.get('leet')
        if found is None:
            found = self.cache['leet'] = LEET(self.skeleton())
        return found

    def words(self):
        """The words of `leet` (split on whitespace and punctuation), as a list
        (cached): what word-gated rules look up."""
        found = self.cache.get('words')
        if found is None:
            found = self.cache['words'] = _WORDS(self.leet()).split()
        return found

    def latin(self):
        """The folded text with look-alike letters read as the Latin letters they
        imitate, case kept; same offsets (cached). What PII detection reads, so
        ``jоhn@example.com`` with a Cyrillic ``о`` is an address."""
        found = self.cache.get('latin')
        if found is None:
            found = text = self.text
            if not text.isascii():
                # PERF: most texts hold none or a few look-alikes: replace those few
                # (str.replace runs at C speed) rather than translate every character
                for ch in _LATIN_CHARS.intersection(text):
                    found = found.replace(ch, _LATIN_OF[ch])
            self.cache['latin'] = found
        return found

    def long_tokens(self):
        """Tokens of the folded text (split on whitespace only) of 15 characters or
        more: where keys, tokens and encoded payloads hide (cached).

        PERF: splitting 4 KB costs ~40 us; it is skipped when no word of the text is
        12 characters long (a long token holds at least one such word unless it is
        cut into short pieces by punctuation, which keys and base64 rarely are)."""
        found = self.cache.get('long')
        if found is None:
            found = []
            if len(self.text) >= 15 and max(map(len, self.words()), default=0) >= 12:
                tokens = self.text.split()
                found = [t for t in tokens if len(t) >= 15]
            self.cache['long'] = found
        return found

    def span(self, start, end):
        """The original characters behind folded[start:end] (invisible characters
        inside the match included)."""
        if self._starts is None:
            return start, end
        if self._starts is False:
            self._starts = _offset_map(self.original)
        starts = self._starts
        if start >= len(starts) - 1:
            return len(self.original), len(self.original)
        o_start = starts[start]
        o_end = starts[end] if end < len(starts) else len(self.original)
        # trailing invisibles before the next visible character stay outside
        return o_start, _trim_end(self.original, o_start, o_end)


_REPLACE_AT_MOST = 24  # distinct characters to change one by one; past it, translate


def _fold_mixed(text):
    """(folded text, whether every character folded to exactly one) of a text that
    is not all ASCII.

    PERF: str.translate looks every character of a non-ASCII string up in the table
    (~35 ns each, 150 us for 4 KB). Most such texts hold few distinct characters that
    change (accents are NFKC-stable; CJK too): those are replaced one by one
    (str.replace runs at C speed), the rest is left alone."""
    fold = _FOLD
    changes = []
    same = True
    for ch in set(text):
        out = fold[ord(ch)]
        if isinstance(out, int):
            continue
        changes.append((ch, out or ''))
        if out is None or len(out) != 1:
            same = False
    if len(changes) > _REPLACE_AT_MOST:
        return text.translate(fold), same
    for ch, out in changes:
        text = text.replace(ch, out)
    return text, same


def _skeleton_mixed(text):
    low = text.lower()
    if len(low) != len(text):  # a letter that lower-cases to two: go char by char
        return text.translate(_SKELETON)
    changes = []
    for ch in set(low):
        if ord(ch) > 127:
            out = _SKELETON[ord(ch)]
            if out != ch:
                changes.append((ch, out))
    if len(changes) > _REPLACE_AT_MOST:
        return low.translate(_SKELETON)
    for ch, out in changes:
        low = low.replace(ch, out)
    return low


def _has_odd_space(text):
    return (
        '\t' in text or '\n' in text or '\r' in text or '\x0b' in text or '\x0c' in text
    )


def _offset_map(original):
    """starts[i] = the index in `original` of the character that produced folded
    character i; one extra entry for the end."""
    starts = []
    fold = _FOLD
    for i, ch in enumerate(original):
        out = fold[ord(ch)]
        if out is None:
            continue
        starts.extend([i] * (1 if isinstance(out, int) else len(out)))
    starts.append(len(original))
    return starts


def _trim_end(original, start, end):
    fold = _FOLD
    while end > start and fold[ord(original[end - 1])] is None:
        end -= 1
    return end


class AsciiMap:
    """A one-for-one mapping of ASCII characters (others kept), applied at C speed
    to any text: str.translate for ASCII text, and for other text the same mapping on
    its UTF-8 bytes (multi-byte sequences hold no ASCII byte, so they pass through and
    every offset is kept)."""

    __slots__ = ('str_table', 'byte_table')

    def __init__(self, mapping):
        self.str_table = str.maketrans(mapping)
        table = bytearray(range(256))
        for src, dst in mapping.items():
            assert len(src) == len(dst) == 1 and src.isascii() and dst.isascii()
            table[ord(src)] = ord(dst)
        self.byte_table = bytes(table)

    def __call__(self, text):
        if text.isascii():
            return text.translate(self.str_table)
        raw = text.encode('utf-8', 'surrogatepass').translate(self.byte_table)
        return raw.decode('utf-8', 'surrogatepass')


# punctuation read as spaces when a text is split into words
WORD_BREAKS = _WORDS = AsciiMap(dict.fromkeys('.,;:!?()[]{}<>|/\\*#"`~=+&^%-', ' '))
LEET = AsciiMap(
    {'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'}
)


def fold(text):
    """The folded form of `text` (see the module docstring)."""
    return Folded(text).text
