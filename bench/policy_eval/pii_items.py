# ruff: noqa: E501 (data and report lines read best unbroken)
"""The labelled PII set: valid values of every kind (checksums computed, not copied),
each written in several surface forms and embedded in sentences, JSON and code, plus
near misses that must not be reported (Luhn-invalid cards, 9xx/000/666 SSNs and
published sample numbers, IBANs with wrong check digits, impossible IPs, version
strings, order numbers, UUIDs, hashes, keys that are prose).

Deterministic (seeded): `python bench/policy_eval/pii_items.py` rewrites
data/pii.jsonl; the file is committed so the figures can be reproduced as they are.
"""

import base64
import json
import os
import random

R = random.Random(20261127)
HERE = os.path.dirname(os.path.abspath(__file__))

FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in '0123456789'}
ARABIC = {c: chr(0x0660 + int(c)) for c in '0123456789'}
DEVANAGARI = {c: chr(0x0966 + int(c)) for c in '0123456789'}


def digits_to(text, table):
    return ''.join(table.get(c, c) for c in text)


def luhn_complete(prefix, length):
    body = prefix + ''.join(
        R.choice('0123456789') for _ in range(length - len(prefix) - 1)
    )
    for d in '0123456789':
        cand = body + d
        total = 0
        for i, ch in enumerate(reversed(cand)):
            v = int(ch)
            if i % 2:
                v *= 2
                if v > 9:
                    v -= 9
            total += v
        if total % 10 == 0:
            return cand
    raise AssertionError


def card_numbers():
    specs = [
        ('4', 16),
        ('4', 13),
        ('51', 16),
        ('55', 16),
        ('2221', 16),
        ('2720', 16),
        ('34', 15),
        ('37', 15),
        ('6011', 16),
        ('65', 16),
        ('3528', 16),
        ('36', 14),
        ('62', 16),
        ('4', 19),
    ]
    return [luhn_complete(p, n) for p, n in specs]


def group(number, sizes, sep):
    out, i = [], 0
    for s in sizes:
        out.append(number[i : i + s])
        i += s
    if i < len(number):
        out.append(number[i:])
    return sep.join(out)


def card_forms(n):
    sizes = (4, 6, 5) if len(n) == 15 else (4, 6, 4) if len(n) == 14 else (4, 4, 4, 4)
    return [
        n,
        group(n, sizes, ' '),
        group(n, sizes, '-'),
        group(n, sizes, '.'),
        group(n, sizes, '\u00a0'),
        group(n, sizes, '\u200b'),
        digits_to(group(n, sizes, ' '), FULLWIDTH),
        digits_to(group(n, sizes, '-'), ARABIC),
    ]


def ssns():
    out = []
    while len(out) < 12:
        area = R.randint(1, 899)
        if area == 666:
            continue
        group_, serial = R.randint(1, 99), R.randint(1, 9999)
        out.append(f'{area:03d}{group_:02d}{serial:04d}')
    return out


def iban(country, bban):
    moved = bban + country + '00'
    num = int(''.join(str(int(c, 36)) for c in moved))
    check = 98 - num % 97
    return f'{country}{check:02d}{bban}'


def ibans():
    return [
        iban('DE', '370400440532013000'),
        iban('GB', 'WEST12345698765432'),
        iban('FR', '20041010050500013M02606'),
        iban('NL', 'ABNA0417164300'),
        iban('ES', '21000418450200051332'),
        iban('IT', 'X0542811101000000123456'),
        iban('CH', '00762011623852957'),
        iban('BE', '539007547034'),
        iban('AT', '1904300234573201'),
        iban('PL', '109010140000071219812874'),
        iban('SE', '50000000058398257466'),
        iban('NO', '86011117947'),
    ]


def group4(s):
    return ' '.join(s[i : i + 4] for i in range(0, len(s), 4))


SENTENCES = [
    'Please charge {v} for the order.',
    'my details: {v}, thanks',
    'Customer wrote: "use {v} from now on"',
    '{v}',
    'The value ({v}) was in the log line at 10:32.',
    '{{"field": "{v}", "ok": true}}',
    "x = '{v}'  # from the form",
    'Can you check whether {v} is right?',
]


def emails():
    users = [
        'jane.doe',
        'j.smith+billing',
        'o_connor',
        'x',
        'first.last.2026',
        'ops-team',
    ]
    domains = [
        'example.com',
        'mail.example.co.uk',
        'sub.domain.example.org',
        'corp.example.io',
        'example.museum',
        'xn--exmple-cua.example',
    ]
    return [f'{u}@{d}' for u in users for d in domains][:24]


def phones():
    return [
        '(415) 555-2671',
        '415-555-2671',
        '415.555.2671',
        '+1 415 555 2671',
        '+1-212-555-0100',
        '(212) 555 0123',
        '+44 20 7946 0958',
        '+49 30 901820',
        '+33 1 42 68 53 00',
        '+81 3-1234-5678',
        '+61 2 9374 4000',
        '+91 22 2778 2000',
        '650-253-0000',
        '+1 (650) 253-0000',
        '+353 1 234 5678',
        '(718) 555-0199',
        '+34 91 123 45 67',
        '+39 06 6982 1234',
        '+46 8 123 456 78',
        '+1.303.555.0147',
    ]


def ipv4s():
    return [
        '192.168.10.20',
        '10.0.0.1',
        '172.16.254.3',
        '8.8.8.8',
        '203.0.113.77',
        '255.255.255.0',
        '100.64.12.9',
        '192.0.2.146',
        '52.94.236.248',
        '127.0.0.1/8',
    ]


def ipv6s():
    return [
        '2001:db8:85a3::8a2e:370:7334',
        'fe80::1ff:fe23:4567:890a',
        '::1',
        '2001:db8::1',
        '2606:4700:4700::1111',
        'fd12:3456:789a:1::1',
    ]


def api_keys():
    alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

    def rnd(n, chars=alnum):
        return ''.join(R.choice(chars) for _ in range(n))

    return [
        'sk-proj-' + rnd(40),
        'sk-' + rnd(48),
        'sk-ant-api03-' + rnd(60),
        'AKIA' + rnd(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'),
        'ghp_' + rnd(36),
        'github_pat_' + rnd(60, alnum + '_'),
        'xoxb-' + rnd(12, '0123456789') + '-' + rnd(24),
        'AIza' + rnd(35, alnum + '_-'),
        'sk_live_' + rnd(24),
        'rk_live_' + rnd(24),
        'glpat-' + rnd(20),
        'hf_' + rnd(34, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'),
    ]


def jwts():
    out = []
    for sub in ('1234567890', 'user-42', 'svc-billing', 'admin@example.com'):
        header = (
            base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}')
            .rstrip(b'=')
            .decode()
        )
        body = (
            base64.urlsafe_b64encode(
                json.dumps({'sub': sub, 'iat': 1700000000}).encode()
            )
            .rstrip(b'=')
            .decode()
        )
        sig = (
            base64.urlsafe_b64encode(bytes(R.randrange(256) for _ in range(32)))
            .rstrip(b'=')
            .decode()
        )
        out.append(f'{header}.{body}.{sig}')
    return out


NEGATIVES = [
    ('credit_card', 'card 4111 1111 1111 1112 failed'),
    ('credit_card', 'order number 1234567890123456'),
    ('credit_card', 'tracking 9400 1000 0000 0000 0000 00'),
    ('credit_card', 'invoice 2026-0001-0002-0003'),
    ('credit_card', '0000 0000 0000 0000 is a placeholder'),
    ('credit_card', 'timestamp 1700000000123 in ms'),
    ('us_ssn', 'ssn 078-05-1120'),
    ('us_ssn', 'ssn 219-09-9999'),
    ('us_ssn', 'ssn 457-55-5462'),
    ('us_ssn', 'ssn 123-45-6789'),
    ('us_ssn', 'ssn 900-12-3456'),
    ('us_ssn', 'ssn 000-12-3456'),
    ('us_ssn', 'ssn 666-12-3456'),
    ('us_ssn', 'ssn 536-00-1234'),
    ('us_ssn', 'ssn 536-22-0000'),
    ('us_ssn', 'call 536-221-234 now'),
    ('us_ssn', 'zip 536221234 without context'),
    ('iban', 'IBAN GB82 WEST 1234 5698 7654 31'),
    ('iban', 'DE89370400440532013001'),
    ('iban', 'ZZ12 3456 7890 1234 5678'),
    ('iban', 'ID AB12CD34EF56GH78IJ'),
    ('ip_address', 'version 10.0.0.1 released'),
    ('ip_address', 'v1.2.3.4'),
    ('ip_address', '999.1.1.1'),
    ('ip_address', 'section 3.2.1.4 of the spec'),
    ('ip_address', 'ratio 1.2.3'),
    ('ip_address', 'at 12:30:45 we met'),
    ('email', 'a@b.c'),
    ('email', 'user@localhost'),
    ('email', '@handle on social'),
    ('email', 'name at example dot com'),
    ('phone', 'phone 555 is short'),
    ('phone', 'room 101-202'),
    ('phone', 'ISBN 978-3-16-148410-0'),
    ('phone', 'the year 1999-2000'),
    ('phone', 'call 911 now'),
    ('phone', 'id 4155552671'),
    ('api_key', 'sk-this-is-not-a-real-key-at-all'),
    ('api_key', 'the task-force-alpha-bravo-charlie'),
    ('api_key', 'AKIA is a prefix used by AWS'),
    ('api_key', 'ghp_ is a GitHub prefix'),
    ('jwt', 'eyJhbGciOi is how a JWT starts'),
    ('jwt', 'eyJ.eyJ.sig'),
    ('us_itin', 'itin 912-30-1234 is not a valid group'),
    ('aba_routing', 'routing 123456789'),
    ('aba_routing', 'account 021000022 routing'),
    ('private_key', '-----BEGIN PUBLIC KEY-----'),
    (None, 'uuid 123e4567-e89b-12d3-a456-426614174000'),
    (None, 'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'),
    (None, 'git commit 3ae5f29 fixed it'),
    (None, 'build 2026.11.27.1'),
    (None, 'price $1,234,567.89'),
    (None, 'coordinates 48.8566, 2.3522'),
    (None, 'the meeting is on 2026-11-27 at 09:30'),
    (None, 'ticket #4821-77'),
    (None, 'port 8080 and 5432 are open'),
    (None, 'pi is 3.14159265358979'),
    (None, 'the population was 8,336,817 in 2020'),
    (None, 'matrix [[1, 2], [3, 4]]'),
]


def items():  # noqa: C901 (one list of generators, read top to bottom)
    out = []

    def add(kind, value, form=None, sentence=None):
        text_value = form or value
        template = sentence or R.choice(SENTENCES)
        text = template.replace('{v}', text_value).replace('{{', '{').replace('}}', '}')
        out.append({'kind': kind, 'text': text, 'value': text_value})

    for n in card_numbers():
        for form in R.sample(card_forms(n), 3):
            add('credit_card', n, form)
    for s in ssns():
        for form in (
            f'{s[:3]}-{s[3:5]}-{s[5:]}',
            f'{s[:3]} {s[3:5]} {s[5:]}',
            digits_to(f'{s[:3]}-{s[3:5]}-{s[5:]}', FULLWIDTH),
        ):
            add('us_ssn', s, form)
        add('us_ssn', s, s, 'my social security number is {v}')
    for i in ibans():
        add('iban', i, i)
        add('iban', i, group4(i))
    for e in emails():
        add('email', e)
    for p in phones():
        add('phone', p)
        add(
            'phone',
            p,
            digits_to(p, FULLWIDTH) if R.random() < 0.3 else p.replace(' ', '\u00a0'),
        )
    for ip in ipv4s():
        add('ip_address', ip)
        add('ip_address', ip, digits_to(ip, DEVANAGARI) if R.random() < 0.3 else None)
    for ip in ipv6s():
        add('ip_address', ip)
    for k in api_keys():
        add('api_key', k)
        add('api_key', k, None, 'export API_KEY={v}')
    for j in jwts():
        add('jwt', j, None, 'Authorization: Bearer {v}')
        add('jwt', j)
    for itin in ('912-70-1234', '900-88-4321', '999-92-0007', '945-50-1111'):
        add('us_itin', itin, None, 'my ITIN is {v}')
        add('us_itin', itin, itin.replace('-', ' '))
    for aba in ('021000021', '011000015', '121000358', '026009593', '322271627'):
        add('aba_routing', aba, None, 'routing number {v} for the wire')
        add('aba_routing', aba, None, 'ABA: {v}')
    for bits in ('RSA ', 'EC ', '', 'OPENSSH '):
        body = base64.b64encode(bytes(R.randrange(256) for _ in range(48))).decode()
        key = f'-----BEGIN {bits}PRIVATE KEY-----\n{body}\n-----END {bits}PRIVATE KEY-----'
        add('private_key', key, None, 'here is the key:\n{v}\nkeep it safe')
    for e in (
        'ops@example.com',
        'a.b-c@example-mail.com',
        'Support@Example.COM',
        'n.o@sub.example.travel',
    ):
        add('email', e, None, 'Mail {v} please.')
    for kind, text in NEGATIVES:
        out.append({'kind': None, 'near': kind, 'text': text, 'value': None})
    return out


def main():
    path = os.path.join(HERE, 'data', 'pii.jsonl')
    with open(path, 'w', encoding='utf-8') as f:
        for item in items():
            f.write(json.dumps(item, ensure_ascii=False) + '\n')
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
