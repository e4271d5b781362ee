"""The policy engine: input policies on requests, output policies on responses and
streams, with one rule for combining verdicts: the most severe wins (block > redact >
warn > log), whatever the order of the policies.

- ``block``: the request is refused (403 ``policy_violation``; the message names the
  policy and the kind found, never the text); on output, a complete response is
  replaced by that error and a stream ends with the wire's error event.
- ``redact``: each matched span (mapped back to the original characters) is replaced
  by a typed placeholder, ``[EMAIL_1]``, numbered per distinct value within the
  request; with ``restore: true`` the placeholders the model writes back are replaced
  by the originals in that request's response, streamed or not.
- ``warn``: the request goes on; ``X-AegisFlow-Policy-Warnings`` names the policies.
- ``log``: the request goes on; the decision is logged and counted.
- ``mode: dry_run``: evaluated, logged and counted with what it would have done, and
  nothing else.

Streams: `StreamGuard` reads decoded text deltas and tool-call argument deltas (never
SSE framing) and holds back a window as long as the longest match any output policy
can report, so a match that spans chunks is seen whole before any of it is released.
Its decisions do not depend on how the text was chunked.

Signed text (the ``thinking`` of an Anthropic thinking block, whose signature
covers it) is read like any other, but never rewritten: a redaction there blocks
instead, and placeholders in it are not restored.
"""

import logging
import re
from typing import NamedTuple

from aegisflow.errors import PermissionDenied
from aegisflow.policy.filters import Finding
from aegisflow.policy.normalize import Folded
from aegisflow.policy.walk import embedding_fields
from aegisflow.policy.walk import field_kind
from aegisflow.policy.walk import request_fields
from aegisflow.policy.walk import response_fields

log = logging.getLogger('aegisflow.policy')

ACTIONS = ('log', 'warn', 'redact', 'block')
SEVERITY = {'log': 1, 'warn': 2, 'redact': 3, 'block': 4}
PHASES = ('input', 'output')
_FAIL_CLOSED = ('timeout', 'error')  # kinds a redaction cannot fix: treated as block
_PLACEHOLDER = re.compile(r'\[[A-Z][A-Z0-9_]{0,30}_\d{1,6}\]')
_MAX_PLACEHOLDER = 40


class PolicyViolation(PermissionDenied):
    default_code = 'policy_violation'

    def __init__(self, message, *, hit=None, **kwargs):
        super().__init__(message, **kwargs)
        self.hit = hit


class Policy:
    """One configured policy: a filter, an action, a phase."""

    __slots__ = (
        'name',
        'phase',
        'action',
        'dry_run',
        'restore',
        'filter',
        'label',
        'fields',
    )

    def __init__(
        self,
        name,
        phase,
        action,
        flt,
        *,
        dry_run=False,
        restore=False,
        label=0,
        fields=None,
    ):
        self.name = name
        self.fields = fields  # the kinds of request field it reads (None: all)
        self.phase = phase
        self.action = action
        self.dry_run = dry_run
        self.restore = restore
        self.filter = flt
        self.label = label

    def __repr__(self):
        return f'Policy({self.name!r}, {self.phase}, {self.action})'

    def scan(self, folded):
        try:
            return self.filter.scan(folded)
        except Exception:
            log.exception('policy filter failed', extra={'policy': self.name})
            return [Finding('error', 0, len(folded.text))]


class Hit(NamedTuple):
    """A policy's finding in one field: offsets are in the field's original text."""

    policy: Policy
    kind: str
    path: str
    start: int
    end: int
    action: str  # what it does (block for fail-closed kinds under redact)

    @property
    def dry_run(self):
        return self.policy.dry_run


def _effective(policy, finding, signed=False):
    action = finding.action or policy.action
    if action == 'redact' and (signed or finding.kind in _FAIL_CLOSED):
        return 'block'
    return action


def blocked_message(hit, phase):
    what = 'Request' if phase == 'input' else 'Response'
    return f"{what} blocked by policy '{hit.policy.name}' ({hit.kind})."


class Redactor:
    """Placeholders of one request: the same value gets the same placeholder."""

    __slots__ = ('by_value', 'originals', 'counts', 'restore')

    def __init__(self):
        self.by_value = {}
        self.originals = {}  # placeholder -> original, for restore
        self.counts = {}
        self.restore = False

    def placeholder(self, kind, value, restore):
        key = (kind, value)
        found = self.by_value.get(key)
        if found is None:
            label = kind.upper()
            n = self.counts[label] = self.counts.get(label, 0) + 1
            found = self.by_value[key] = f'[{label}_{n}]'
        if restore:
            self.originals[found] = value
            self.restore = True
        return found

    def restore_text(self, text):
        if not self.originals or '[' not in text:
            return text
        return _PLACEHOLDER.sub(
            lambda m: self.originals.get(m.group(), m.group()), text
        )


class Decision:
    """What the policies of one phase decided about a request or response."""

    __slots__ = ('hits', 'blocked', 'rewritten')

    def __init__(self):
        self.hits = []
        self.blocked = None
        self.rewritten = False

    @property
    def warnings(self):
        names = []
        for h in self.hits:
            if h.action == 'warn' and not h.dry_run and h.policy.name not in names:
                names.append(h.policy.name)
        return names


def _scan_field(field_text, policies, path, hits, signed=False):
    """Hits of `policies` in one text; the enforce-mode redactions as
    [(start, end, kind, restore)]."""
    folded = Folded(field_text)
    redactions = []
    for policy in policies:
        for f in policy.scan(folded):
            start, end = folded.span(f.start, f.end)
            action = _effective(policy, f, signed)
            hit = Hit(policy, f.kind, path, start, end, action)
            hits.append(hit)
            if action == 'redact' and not policy.dry_run and end > start:
                redactions.append((start, end, f.kind, policy.restore, f.replacement))
    return redactions


def _apply(text, redactions, redactor):
    """`text` with each redacted span (overlaps merged, the first kind named) replaced
    by its placeholder."""
    redactions.sort(key=lambda r: (r[0], -r[1]))
    merged = []
    for start, end, kind, restore, replacement in redactions:
        if merged and start < merged[-1][1]:
            s, e, k, r, rep = merged[-1]
            merged[-1] = (s, max(e, end), k, r or restore, None if end > e else rep)
        else:
            merged.append((start, end, kind, restore, replacement))
    out, pos = [], 0
    for start, end, kind, restore, replacement in merged:
        out.append(text[pos:start])
        if replacement is not None:
            out.append(replacement)
        else:
            out.append(redactor.placeholder(kind, text[start:end], restore))
        pos = end
    out.append(text[pos:])
    return ''.join(out)


def _decide(fields, policies, redactor, body=None):
    """Scan `fields` (of `body`, when some policy reads only some kinds of
    field) with `policies`; combine the verdicts."""
    decision = Decision()
    pending = []
    scoped = body is not None and any(p.fields is not None for p in policies)
    for field in fields:
        if not field.text:
            continue
        chosen = policies
        if scoped:
            kind = field_kind(body, field.path)
            chosen = [p for p in policies if p.fields is None or kind in p.fields]
        redactions = _scan_field(
            field.text, chosen, field.path, decision.hits, field.signed
        )
        if redactions:
            pending.append((field, redactions))
    worst = None
    for hit in decision.hits:
        if hit.dry_run:
            continue
        if worst is None or SEVERITY[hit.action] > SEVERITY[worst.action]:
            worst = hit
    if worst is not None and worst.action == 'block':
        decision.blocked = worst
        return decision  # ORDER: nothing is rewritten for a refused request
    for field, redactions in pending:
        field.set(_apply(field.text, redactions, redactor))
    decision.rewritten = bool(pending)
    return decision


def check_embeddings(request, policies, redactor):
    """Run input `policies` over the texts of an embeddings request."""
    # NOTE: what is embedded is the user's text
    chosen = [p for p in policies if p.fields is None or 'user' in p.fields]
    return _decide(embedding_fields(request), chosen, redactor)


def check_request(body, policies, redactor):
    """Run input `policies` over every text field of `body` (rewritten in place when
    a redaction applies)."""
    return _decide(request_fields(body), policies, redactor, body)


def check_response(result, policies, redactor, fields_of=response_fields):
    """Run output `policies` over a complete chat response (or with `fields_of`,
    an answer passed through: an Anthropic message, a Responses object), then put
    back the originals
    of restored placeholders. Whether any text changed: ``decision.rewritten``."""
    fields = fields_of(result)
    before = [f.text for f in fields]
    decision = _decide(fields, policies, redactor) if policies else Decision()
    if decision.blocked is None and redactor.restore:
        for field in fields:
            if field.signed:
                continue
            restored = redactor.restore_text(field.text)
            if restored != field.text:
                field.set(restored)
    decision.rewritten = any(f.text != b for f, b in zip(fields, before, strict=True))
    return decision


# -- streams -------------------------------------------------------------------------


class _Window:
    """One stream of text (a choice's content, or one tool call's arguments): holds
    back the last `hold` characters until more text or the end shows what they are."""

    __slots__ = ('guard', 'path', 'context', 'pending', 'signed')

    def __init__(self, guard, path, signed=False):
        self.guard = guard
        self.path = path
        self.context = ''  # released text kept for look-behind, at most `hold` long
        self.pending = ''
        self.signed = signed

    def push(self, text):
        self.pending += text
        hold = self.guard.hold
        # PERF: scan once per `step` new characters past the hold-back
        if len(self.pending) <= hold + self.guard.step:
            return ''
        return self._release(len(self.pending) - hold)

    def finish(self):
        return self._release(len(self.pending)) if self.pending else ''

    def _release(self, upto):
        guard = self.guard
        ctx = self.context
        window = ctx + self.pending
        base = len(ctx)
        upto += base
        folded = Folded(window)
        acts = []
        for policy in guard.policies:
            for f in policy.scan(folded):
                start, end = folded.span(f.start, f.end)
                acts.append((start, end, policy, f))
        if guard.redactor.restore and not self.signed:
            for m in _PLACEHOLDER.finditer(window):
                if m.group() in guard.redactor.originals:
                    acts.append((m.start(), m.end(), None, 'restore'))
        final = upto == len(window)
        if not final:
            upto = self._hold_back(window, base, upto, acts)
        redactions = []
        for start, end, policy, f in acts:
            if start < base or end > upto or (start == end and not final):
                continue  # released before, or not yet whole
            if policy is None:
                redactions.append((start, end, 'restore', None, None))
                continue
            hit = Hit(
                policy,
                f.kind,
                self.path,
                start - base,
                end - base,
                _effective(policy, f, self.signed),
            )
            guard.hit(hit)
            if hit.action == 'redact' and not policy.dry_run and end > start:
                redactions.append((start, end, f.kind, policy.restore, f.replacement))
        released = window[base:upto]
        if redactions:
            released = self._rewrite(window, base, upto, redactions)
        self.context = (
            window[max(base, upto - guard.hold) : upto] if upto > base else ctx
        )
        self.pending = window[upto:]
        return released

    def _hold_back(self, window, base, upto, acts):
        """Where the release must stop: before a value a filter says may still be
        growing, and before any match that runs past the release point."""
        for hold_from in self.guard.hold_froms:
            at = hold_from(window)
            if at is not None and at < upto:
                upto = max(base, at)
        for start, end, _, _ in acts:
            if start >= base and start < upto < end:
                upto = start
        return upto

    def _rewrite(self, window, base, upto, redactions):
        redactor = self.guard.redactor
        redactions.sort(key=lambda r: (r[0], -r[1]))
        out, pos = [], base
        for start, end, kind, restore, replacement in redactions:
            if start < pos:
                continue
            out.append(window[pos:start])
            value = window[start:end]
            if kind == 'restore':
                out.append(redactor.originals.get(value, value))
            elif replacement is not None:
                out.append(replacement)
            else:
                out.append(redactor.placeholder(kind, value, restore))
            pos = end
        out.append(window[pos:upto])
        return ''.join(out)


class StreamGuard:
    """Output policies (and restores) over a stream of chat chunks."""

    def __init__(self, policies, redactor, on_hit):
        self.policies = policies
        self.redactor = redactor
        self.on_hit = on_hit
        longest = max(
            (getattr(p.filter, 'max_match', 256) for p in policies), default=0
        )
        self.hold = max(longest, _MAX_PLACEHOLDER if redactor.restore else 0, 1)
        self.step = max(64, self.hold // 4)
        self.hold_froms = [
            p.filter.hold_from for p in policies if hasattr(p.filter, 'hold_from')
        ]
        self.windows = {}

    def hit(self, hit):
        self.on_hit(hit)
        if hit.action == 'block' and not hit.dry_run:
            raise PolicyViolation(blocked_message(hit, 'output'), hit=hit)

    def _window(self, key, path):
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window(self, path)
        return w

    def window(self, path, signed=False):
        """A window over one stream of text outside chat chunks (an Anthropic
        content block relayed as is): ``push(text)`` returns the text that may go
        out now, rewritten where a policy redacted; ``finish()`` the rest;
        ``pending`` what is held back."""
        return _Window(self, path, signed)

    def filter(self, chunks):
        """The chunks with held-back, scanned, redacted and restored text."""
        first = True
        for chunk in chunks:
            keep = first
            first = False
            for choice in chunk.get('choices') or ():
                index = choice.get('index', 0)
                delta = choice.get('delta') or {}
                content = delta.get('content')
                if content:
                    path = f'choices[{index}].delta.content'
                    delta['content'] = self._window((index, None), path).push(content)
                for call in delta.get('tool_calls') or ():
                    function = call.get('function') or {}
                    if function.get('arguments'):
                        k = call.get('index', 0)
                        path = (
                            f'choices[{index}].delta.tool_calls[{k}].function.arguments'
                        )
                        function['arguments'] = self._window((index, k), path).push(
                            function['arguments']
                        )
                if choice.get('finish_reason'):
                    self._flush(index, delta)
                    choice['delta'] = delta
                    keep = True
                elif len(delta) > 1 or delta.get('content') or delta.get('tool_calls'):
                    keep = True
            if chunk.get('usage') or not chunk.get('choices'):
                keep = True
            if keep:
                yield chunk
        rest = {}
        for index, _ in list(self.windows):
            delta = rest.setdefault(index, {})
            self._flush(index, delta)
        choices = [{'index': i, 'delta': d} for i, d in rest.items() if d]
        if choices:
            yield {'object': 'chat.completion.chunk', 'choices': choices}

    def _flush(self, index, delta):
        for key in sorted(
            k for k in self.windows if k[0] == index and k[1] is not None
        ):
            tail = self.windows.pop(key).finish()
            if tail:
                calls = delta.setdefault('tool_calls', [])
                for call in calls:
                    if call.get('index', 0) == key[1]:
                        fn = call.setdefault('function', {})
                        fn['arguments'] = (fn.get('arguments') or '') + tail
                        break
                else:
                    calls.append({'index': key[1], 'function': {'arguments': tail}})
        window = self.windows.pop((index, None), None)
        if window is not None:
            tail = window.finish()
            if tail:
                delta['content'] = (delta.get('content') or '') + tail
