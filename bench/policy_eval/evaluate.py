# ruff: noqa: E501 (data and report lines read best unbroken)
"""Precision, recall and false-positive rates of the PII detectors and the
prompt-injection heuristics on the labelled sets in data/.

    .venv/bin/python bench/policy_eval/evaluate.py            # tables
    .venv/bin/python bench/policy_eval/evaluate.py --check    # exit 1 below target

PII (data/pii.jsonl): one item per text; a positive item holds one value of a kind.
A true positive is a finding of that kind whose span covers the value (mapped back
to the original characters); any other finding is a false positive; a positive item
without its finding is a false negative. Every kind is looked for on every item (the
way a policy with all kinds runs), so a value reported as the wrong kind counts
against both.

Injection (data/injection_dev.jsonl, data/injection_heldout.jsonl, built by
injection_data.py, split by source): label ``attack`` or ``benign``, a ``family``
each; benign families are ordinary prompts, short pieces of documentation, long
documents, and ``hard`` text that uses the vocabulary of attacks without attacking.
A score at the default threshold (0.5) is a positive. Recall per attack family and
false positives per benign family, each with a 95% Wilson interval, for each split,
for the whole detector and for its rules alone (the learned model off): the rules
are written against the development split and the model is trained on it
(`train_injection.py`); the held-out split's sources (template families, written
families, encodings, packages of documents, the instructions its templates carry)
are never read while writing or training them, and its figures are the ones
published.

Targets: PII precision and recall >= 0.98. Injection, the goal on the held-out
split: recall >= 0.85 with at most 1% false positives on ordinary text and 3% on
hard text; `--check` guards the development split against regressions (`FLOORS`).
"""

import argparse
import collections
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..'))

from aegisflow.policy.filters import InjectionFilter  # noqa: E402
from aegisflow.policy.filters import PiiFilter  # noqa: E402
from aegisflow.policy.normalize import Folded  # noqa: E402
from aegisflow.policy.pii import KINDS  # noqa: E402

TARGETS = {'pii_precision': 0.98, 'pii_recall': 0.98}
GOAL = {'recall': 0.85, 'ordinary': 0.01, 'hard': 0.03}  # held-out
FLOORS = {'recall': 0.75, 'ordinary': 0.01, 'hard': 0.03}  # development: no worse
HARD = ('hard',)


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (c - r) / d), min(1.0, (c + r) / d))


def load(name):
    with open(os.path.join(HERE, 'data', name), encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate_pii():
    flt = PiiFilter(KINDS)
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    errors = []
    items = load('pii.jsonl')
    for item in items:
        text = item['text']
        folded = Folded(text)
        found = []
        for f in flt.scan(folded):
            s, e = folded.span(f.start, f.end)
            found.append((f.kind, s, e))
        kind, value = item['kind'], item['value']
        hit = False
        if kind is not None:
            at = text.find(value)
            for k, s, e in found:
                if k == kind and s <= at and e >= at + len(value) - 1 and not hit:
                    hit = True
                    tp[kind] += 1
                else:
                    fp[k] += 1
                    errors.append(('FP', k, text[s:e], item['text'][:80]))
            if not hit:
                fn[kind] += 1
                errors.append(('FN', kind, value, item['text'][:80]))
        else:
            for k, s, e in found:
                fp[k] += 1
                errors.append(('FP', k, text[s:e], item['text'][:80]))
    return items, tp, fp, fn, errors


def evaluate_injection(split):
    """{(label, family): [positives, n]}, misses, for one split."""
    flt, rules = InjectionFilter(0.5), InjectionFilter(0.5, learned=False)
    rows = collections.defaultdict(lambda: [0, 0, 0])
    errors = []
    for item in load(f'injection_{split}.jsonl'):
        score, _ = flt.score(Folded(item['text']))
        positive = score >= 0.5
        key = (item['label'], item['family'])
        rows[key][0] += positive
        rows[key][1] += 1
        rows[key][2] += rules.score(Folded(item['text']))[0] >= 0.5
        if positive != (item['label'] == 'attack'):
            errors.append((split, *key, round(score, 2), item['text'][:100]))
    return rows, errors


def injection_report(split, rows):
    """Print one split's table; its (recall, ordinary FP rate, hard FP rate)."""
    totals = {}
    groups = {
        'recall': [v for (lab, _), v in rows.items() if lab == 'attack'],
        'ordinary': [
            v for (lab, f), v in rows.items() if lab == 'benign' and f not in HARD
        ],
        'hard': [v for (lab, f), v in rows.items() if lab == 'benign' and f in HARD],
    }
    n_attack = sum(v[1] for v in groups['recall'])
    n_benign = sum(v[1] for k in ('ordinary', 'hard') for v in groups[k])
    print(f'### {split} ({n_attack} attacks, {n_benign} benign)\n')
    print('| label | family | n | flagged | rate | 95% CI | rules alone |')
    print('|---|---|---:|---:|---:|---|---:|')
    for (label, family), (k, n, r) in sorted(rows.items()):
        lo, hi = wilson(k, n)
        print(
            f'| {label} | {family} | {n} | {k} | {k / n:.3f} | {lo:.3f}-{hi:.3f} | {r / n:.3f} |'
        )
    for name, label in (
        ('recall', 'attacks: recall'),
        ('ordinary', 'ordinary text: false positives'),
        ('hard', 'hard text: false positives'),
    ):
        k = sum(v[0] for v in groups[name])
        n = sum(v[1] for v in groups[name])
        r = sum(v[2] for v in groups[name])
        lo, hi = wilson(k, n)
        totals[name] = _ratio(k, n)
        print(
            f'| **{label}** | all | {n} | {k} | **{totals[name]:.3f}** | {lo:.3f}-{hi:.3f} | {_ratio(r, n):.3f} |'
        )
    print()
    return totals


def _ratio(a, b):
    return a / b if b else 1.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='exit 1 when below target')
    parser.add_argument('--errors', action='store_true', help='list every miss')
    args = parser.parse_args(argv)

    items, tp, fp, fn, pii_errors = evaluate_pii()
    print(
        f'## PII ({len(items)} items, {sum(1 for i in items if i["kind"] is None)} near misses)\n'
    )
    print('| kind | TP | FP | FN | precision | recall |')
    print('|---|---:|---:|---:|---:|---:|')
    for kind in sorted(set(tp) | set(fp) | set(fn)):
        print(
            f'| {kind} | {tp[kind]} | {fp[kind]} | {fn[kind]} | '
            f'{_ratio(tp[kind], tp[kind] + fp[kind]):.3f} | {_ratio(tp[kind], tp[kind] + fn[kind]):.3f} |'
        )
    TP, FP, FN = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision, recall = _ratio(TP, TP + FP), _ratio(TP, TP + FN)
    print(
        f'| **all** | {TP} | {FP} | {FN} | **{precision:.3f}** | **{recall:.3f}** |\n'
    )

    print('## Prompt injection\n')
    inj_errors, measured = [], {}
    for split in ('dev', 'heldout'):
        rows, errors = evaluate_injection(split)
        inj_errors += errors
        measured[split] = injection_report(split, rows)
    held = measured['heldout']
    met = (
        held['recall'] >= GOAL['recall']
        and held['ordinary'] <= GOAL['ordinary']
        and held['hard'] <= GOAL['hard']
    )
    print(f'held-out goal {"met" if met else "NOT met"}: {GOAL}')
    if args.errors:
        print('\n## Misses\n')
        for e in pii_errors + inj_errors:
            print('-', e)
    dev = measured['dev']
    ok = (
        precision >= TARGETS['pii_precision']
        and recall >= TARGETS['pii_recall']
        and dev['recall'] >= FLOORS['recall']
        and dev['ordinary'] <= FLOORS['ordinary']
        and dev['hard'] <= FLOORS['hard']
    )
    print(
        f'\nPII targets and development floors {"met" if ok else "NOT met"}: {TARGETS} {FLOORS}'
    )
    return 0 if ok or not args.check else 1


if __name__ == '__main__':
    sys.exit(main())
