"""The labelled evaluation of the detectors stays above its targets (the figures are
in bench/RESULTS.md; `python bench/policy_eval/evaluate.py` prints them)."""

import collections
import importlib.util
import json
import os

EVAL = os.path.join(os.path.dirname(__file__), '..', '..', 'bench', 'policy_eval')


def _load(name):
    with open(os.path.join(EVAL, 'data', name), encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def test_the_sets_are_as_large_as_promised():
    pii = _load('pii.jsonl')
    kinds = collections.Counter(i['kind'] for i in pii)
    assert len(pii) >= 300 and kinds[None] >= 50
    assert set(kinds) - {None} >= {
        'email', 'phone', 'credit_card', 'us_ssn', 'iban', 'ip_address', 'api_key', 'jwt',
    }  # fmt: skip
    dev, held = _load('injection_dev.jsonl'), _load('injection_heldout.jsonl')
    for split in (dev, held):
        labels = collections.Counter(i['label'] for i in split)
        assert labels['attack'] >= 150 and labels['benign'] >= 300
        assert sum(1 for i in split if i['family'] == 'hard') >= 20
    # split by source: no source on both sides
    assert not {i['source'] for i in dev} & {i['source'] for i in held}
    # nothing from the reserved collections
    assert not any(
        i['source'].startswith(('garak', 'pyrit', 'inspect', 'rebuff'))
        for i in dev + held
    )


def test_detectors_meet_their_targets(capsys):
    spec = importlib.util.spec_from_file_location(
        'evaluate', os.path.join(EVAL, 'evaluate.py')
    )
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    assert evaluate.main(['--check']) == 0, capsys.readouterr().out
