# ruff: noqa: E501 (patterns read best unbroken)
"""Prompt-injection heuristics: signals with weights, summed into a score in [0, 1].

Read over the keyword skeleton of folded text (lower case, confusables mapped) with
leetspeak digits read as letters, so ``1gn0re prev1ous 1nstruct1ons`` and
``ıgnоre`` (Cyrillic о) score like the plain phrase. Signals:

- ``instruction_override``: an override verb (ignore, disregard, forget, bypass, ...)
  before a reference to earlier or system instructions, rules or prompts;
- ``role_hijack``: "you are now ...", DAN / developer mode / jailbreak personas, "act
  as ... without restrictions", "pretend you have no rules";
- ``prompt_extraction``: asking for the system prompt, hidden or initial instructions,
  or "everything above";
- ``template_tokens``: chat-template and delimiter tokens (``<|im_start|>``,
  ``[INST]``, ``<<SYS>>``, ``</system>``, fake ``system:`` / ``assistant:`` turns);
- ``new_instructions``: "new instructions:", "important: from now on ...", "system
  override";
- ``exfiltration``: markdown images or links that carry data to a remote query string;
- ``encoded_payload``: a base64 or hex run that decodes to text which itself scores
  (decoded once, at most 64 KiB).

Each signal counts once per text (its strongest match). The score is the sum of the
weights of the signals found, capped at 1; ``threshold`` (default 0.5) decides.
"""

import base64
import binascii
import re

_LEET = str.maketrans(
    {'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'}
)

_OVERRIDE = re.compile(
    r'\b(?:ignore|disregard|forget|bypass|skip|override|overrule|abandon|drop|discard'
    r'|do not (?:follow|obey|listen to)|don\'?t (?:follow|obey)|stop following|neglect'
    r'|set aside|throw out|pay no attention to)\s+'
    r'(?:(?:all|any|every|each|the|your|my|these|those|this|of|that|everything|what)\s+){0,3}'
    r'(?:(?:previous|prior|above|earlier|preceding|initial|original|old|former|system'
    r'|developer|given|existing|current|safety|default|last|first)\s+){0,2}'
    r'(?:(?:and|or)\s+(?:\w+\s+){0,2})?'
    r'(?:instructions?|prompts?|rules?|directives?|directions?|guidelines?|guidance'
    r'|commands?|context|constraints?|restrictions?|policies|policy|programming'
    r'|orders?|messages?|conversation|text|content|input|you(?:\'ve)? (?:were|was|have been) told'
    r'|(?:that|what) (?:was|were) said)\b'
)
_OVERRIDE_ALT = re.compile(
    r'\b(?:ignore|disregard|forget)\s+(?:\w+\s+){0,4}(?:above|before|previously|so far|prior)\b'
    r'|\bforget (?:everything|all)\b'
    r'|\b(?:from now on|henceforth|starting now),? (?:you|ignore|disregard|your)\b'
)
_ROLE = re.compile(
    r'\byou are (?:now|no longer|free|going to be|about to)\b'
    r'|\b(?:act|behave|respond|answer|reply)(?:ing)? as (?:if you (?:are|were)|an?|my)\b[^.\n]{0,80}'
    r'\b(?:without|no|free of|unfiltered|uncensored|unrestricted)\b'
    r'|\bpretend (?:to be|you are|that you|you\'re)\b'
    r'|\b(?:dan|stan|dude|aim)\b[^.\n]{0,40}\b(?:do anything now|jailbr(?:oken|eak)|mode)\b'
    r'|\bdo anything now\b|\bjailbr(?:oken|eak)\b|\bdeveloper mode\b|\bgod mode\b'
    r'|\b(?:unfiltered|uncensored|unrestricted|no[- ]limits?)\s+(?:ai|assistant|mode|model|version|chatbot)\b'
    r'|\bno (?:longer )?(?:bound|restricted|limited) by\b'
    r'|\bwithout (?:any )?(?:restrictions|filters|limitations|censorship|ethical guidelines|rules)\b'
    r'|\b(?:switch|enter|enable|activate)\w* (?:to |into )?(?:\w+ ){0,2}mode\b'
    r'|\bstay in character\b|\bbreak character\b'
)
_EXTRACT = re.compile(
    r'\b(?:reveal|print|show|display|repeat|output|tell|give|share|write out|list|dump|leak|spell|recite|echo|return|paste|copy|translate|summari[sz]e)\b'
    r'[^.\n?]{0,40}\b(?:(?:your|the|its|my) (?:\w+ )?(?:system prompt|system message|initial prompt|initial instructions)'
    r'|(?:your|the) (?:hidden|secret|original|internal|developer|previous|above|initial|first|prior) (?:prompt|instructions?|rules|message|text|directives?|guidelines)'
    r'|instructions? (?:above|you were given|you received)|your (?:instructions|prompt|rules|guidelines|directives|configuration)'
    r'|everything (?:above|before)|(?:the )?(?:text|words|content) above|pre-?prompt|prompt above)'
    r'|\bwhat (?:is|are|was|were) (?:your (?:system prompt|initial instructions|original instructions|instructions|rules|hidden)|the system prompt)'
    r'|\b(?:starting|beginning) with ["\']?you are\b'
)
_TEMPLATE = re.compile(
    r'<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|end_header_id|eot_id)\|>'
    r'|\[/?inst\]|<<\s*/?sys\s*>>|</?\s*(?:system|instructions?|sys)\s*>'
    r'|(?:^|\n)\s*#{2,}\s*(?:system|instruction|new instructions?)\b'
    r'|(?:^|\n)\s*(?:system|assistant)\s*:\s'
    r'|\{\{#?system~?\}\}|\[system\]|\(system\)|\bsystem instruction:'
)
_NEW = re.compile(
    r'\bnew (?:important )?(?:instructions?|rules?|task|directive|objective|orders?)\s*[:!\-]'
    r'|\*{2,}\s*new\b|\bimportant(?: new)? instructions?\b|\bsystem override\b|\badmin(?:istrator)? (?:mode|override|access)\b'
    r'|\binstead,? (?:you (?:must|should|will)|say|print|output|respond|write|reply)\b'
    r'|\bdo not (?:tell|inform|mention)(?: this)? (?:to )?the user\b'
    r'|\b(?:your|the) (?:real|true|actual|new) (?:task|instructions?|goal|purpose|objective) (?:is|are)\b'
    r'|\boverride (?:your|the|all|any) (?:\w+ )?(?:settings|safety|filters?|protocols?)\b'
)
_EXFIL = re.compile(
    r'!\[[^\]]{0,100}\]\(\s*https?://[^)\s]{1,300}\?[^)\s]{0,300}=[^)\s]*\)'
)
_B64 = re.compile(r'[A-Za-z0-9+/]{24,}={0,2}')
_HEX = re.compile(r'\b(?:[0-9a-f]{2}){16,}\b')

# signal name, pattern, weight
SIGNALS = (
    ('instruction_override', _OVERRIDE, 0.6),
    ('instruction_override', _OVERRIDE_ALT, 0.5),
    ('role_hijack', _ROLE, 0.5),
    ('prompt_extraction', _EXTRACT, 0.6),
    ('template_tokens', _TEMPLATE, 0.5),
    ('new_instructions', _NEW, 0.35),
    ('exfiltration', _EXFIL, 0.6),
)
_MAX_DECODED = 64 * 1024


def _signals(text):
    """{signal: (weight, start, end)} in `text` (already lower-cased skeleton)."""
    found = {}
    leet = text.translate(_LEET)
    for name, pattern, weight in SIGNALS:
        m = pattern.search(text) or (pattern.search(leet) if leet != text else None)
        if m is not None and found.get(name, (0,))[0] < weight:
            found[name] = (weight, m.start(), m.end())
    return found


def _decoded(text):
    """Texts hidden in base64 or hex runs of `text`, decoded once."""
    budget = _MAX_DECODED
    for pattern, decode in ((_B64, _b64), (_HEX, bytes.fromhex)):
        for m in pattern.finditer(text):
            if budget <= 0:
                return
            try:
                raw = decode(m.group())
            except (ValueError, binascii.Error):
                continue
            budget -= len(raw)
            try:
                inner = raw.decode('utf-8')
            except UnicodeDecodeError:
                continue
            if sum(c.isprintable() for c in inner) >= 0.9 * len(inner):
                yield m.start(), m.end(), inner.lower()


def _b64(s):
    return base64.b64decode(s + '=' * (-len(s) % 4), validate=False)


def score(skeleton, original=None):
    """(score, [(signal, start, end)]) for skeleton text; `original` (the folded text
    before lower-casing) is where encoded payloads are looked for (base64 is case
    sensitive)."""
    found = _signals(skeleton)
    source = original if original is not None else skeleton
    if 'encoded_payload' not in found:
        for start, end, inner in _decoded(source):
            hidden = _signals(inner)
            if hidden:
                weight = max(w for w, _, _ in hidden.values())
                found['encoded_payload'] = (max(weight, 0.5), start, end)
                break
    total = min(1.0, sum(w for w, _, _ in found.values()))
    return total, [(name, s, e) for name, (_, s, e) in found.items()]
