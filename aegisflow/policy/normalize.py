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

    __slots__ = ('original', 'text', '_starts', '_skeleton')

    def __init__(self, original):
        self.original = original
        if original.isascii():
            # PERF: only whitespace can change, one character for one
            self.text = (
                original.translate(_FOLD) if _has_odd_space(original) else original
            )
            self._starts = None  # identity offsets
        else:
            self.text = original.translate(_FOLD)
            self._starts = (
                None
                if len(self.text) == len(original) and _same_lengths(original)
                else False
            )
        self._skeleton = None

    @property
    def identity(self):
        """Whether offsets in `text` are offsets in `original`."""
        return self._starts is None

    def skeleton(self):
        if self._skeleton is None:
            self._skeleton = self.text.translate(_SKELETON)
        return self._skeleton

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


def _has_odd_space(text):
    return (
        '\t' in text or '\n' in text or '\r' in text or '\x0b' in text or '\x0c' in text
    )


def _same_lengths(text):
    """Whether every character folds to exactly one character."""
    fold = _FOLD
    for ch in set(text):
        out = fold[ord(ch)]
        if not isinstance(out, int) and (out is None or len(out) != 1):
            return False
    return True


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


def fold(text):
    """The folded form of `text` (see the module docstring)."""
    return Folded(text).text
