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

Injection (data/injection.jsonl): label ``attack`` or ``benign``; benign items carry
``hard: true`` when they use the vocabulary of attacks without attacking. A finding
at the default threshold (0.5) is a positive. Recall per attack category, false
positives per benign category, each with a 95% Wilson interval.

Targets (issue): PII precision and recall >= 0.98; injection recall >= 0.75 with at
most 3% false positives on benign prompts.
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

TARGETS = {
    'pii_precision': 0.98,
    'pii_recall': 0.98,
    'inj_recall': 0.75,
    'inj_fpr': 0.03,
}


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


def evaluate_injection():
    flt = InjectionFilter(0.5)
    rows = collections.defaultdict(lambda: [0, 0])  # (label, category) -> [positive, n]
    errors = []
    items = load('injection.jsonl')
    for item in items:
        score, signals = flt.score(Folded(item['text']))
        positive = score >= 0.5
        key = (item['label'], item['category'])
        rows[key][0] += positive
        rows[key][1] += 1
        if positive != (item['label'] == 'attack'):
            errors.append(
                (item['label'], item['category'], round(score, 2), item['text'][:100])
            )
    return items, rows, errors


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

    items, rows, inj_errors = evaluate_injection()
    # the headline leaves out attacks written in low-resource languages (spikee's
    # translations): lexical rules read English; those are reported on their own row
    attacks = [
        v
        for (label, cat), v in rows.items()
        if label == 'attack' and not cat.endswith('_lrl')
    ]
    benign = [v for (label, _), v in rows.items() if label == 'benign']
    hits, n_attack = sum(v[0] for v in attacks), sum(v[1] for v in attacks)
    fps, n_benign = sum(v[0] for v in benign), sum(v[1] for v in benign)
    print(
        f'## Prompt injection ({n_attack} English attacks, {n_benign} benign; '
        f'{sum(1 for i in items if i["category"].endswith("_lrl"))} low-resource-language attacks apart)\n'
    )
    print('| label | category | n | flagged | rate | 95% CI |')
    print('|---|---|---:|---:|---:|---|')
    for (label, category), (k, n) in sorted(rows.items()):
        lo, hi = wilson(k, n)
        print(f'| {label} | {category} | {n} | {k} | {k / n:.3f} | {lo:.3f}-{hi:.3f} |')
    recall_inj, fpr = hits / n_attack, fps / n_benign
    lo, hi = wilson(hits, n_attack)
    flo, fhi = wilson(fps, n_benign)
    print(
        f'| **attack** | **all English** | {n_attack} | {hits} | **{recall_inj:.3f}** | {lo:.3f}-{hi:.3f} |'
    )
    print(
        f'| **benign** | **all** | {n_benign} | {fps} | **{fpr:.3f}** | {flo:.3f}-{fhi:.3f} |'
    )
    if args.errors:
        print('\n## Misses\n')
        for e in pii_errors + inj_errors:
            print('-', e)
    ok = (
        precision >= TARGETS['pii_precision']
        and recall >= TARGETS['pii_recall']
        and recall_inj >= TARGETS['inj_recall']
        and fpr <= TARGETS['inj_fpr']
    )
    print(f'\ntargets {"met" if ok else "NOT met"}: {TARGETS}')
    return 0 if ok or not args.check else 1


if __name__ == '__main__':
    sys.exit(main())
