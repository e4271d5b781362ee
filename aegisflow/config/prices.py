"""The ``prices`` section and the providers' own prices: USD per million tokens."""

import os
from dataclasses import dataclass

import yaml

from aegisflow import shipped
from aegisflow.config.common import _DuplicateKeyLoader
from aegisflow.config.reader import Node

_PRICES = 'prices.yaml'  # the shipped price table
_PRICE_KEYS = ('input', 'output', 'cached_input', 'cache_write_input')
# USD per million tokens: ten dollars a token, far past any real price (a
# request's cost is capped anyway: `aegisflow.pricing.COST_MAX_NANO`)
PRICE_MAX = 10**7


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write_input: float | None = None


class PricesSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def price_file(self, node):
        """The top-level ``prices`` key: a YAML file of ``{model: {input, output,
        cached_input, cache_write_input}}`` in USD per million tokens. Without it,
        prices.yaml beside the config when there is one, else the table that ships
        with the gateway. (A provider's own ``prices`` win over whichever it is.)"""
        default = os.path.join(self.base_dir, 'prices.yaml')
        if node.missing:
            path = default if os.path.exists(default) else str(shipped.path(_PRICES))
        else:
            rel = node.str(expected='the path of a prices YAML file')
            if rel is None:
                return {}
            path = os.path.join(self.base_dir, rel)
        try:
            with open(path, 'rb') as f:
                data = yaml.load(f, Loader=_DuplicateKeyLoader)  # noqa: S506
        except (OSError, yaml.YAMLError) as exc:
            node.fail(
                'a readable prices YAML file',
                found=f'{type(exc).__name__}: '
                f'{getattr(exc, "strerror", None) or exc} ({path})',
            )
            return {}
        sub = Node(data, f'prices({os.path.basename(path)})', self.problems)
        if not sub.mapping(('models',)):
            return {}
        return self.price_map(sub.get('models'))

    def price_map(self, node):
        if node.missing:
            return {}
        if not isinstance(node.value, dict):
            node.fail(
                'a mapping of model name to {input, output, cached_input, '
                'cache_write_input}'
            )
            return {}
        out = {}
        for model, child in node.items():
            if not child.mapping(_PRICE_KEYS):
                continue
            inp = child.get('input').num(min=0, max=PRICE_MAX)
            outp = child.get('output').num(min=0, max=PRICE_MAX)
            cached = child.get('cached_input').num(None, min=0, max=PRICE_MAX)
            written = child.get('cache_write_input').num(None, min=0, max=PRICE_MAX)
            if inp is not None and outp is not None:
                out[str(model)] = Price(
                    input=inp,
                    output=outp,
                    cached_input=cached,
                    cache_write_input=written,
                )
        return out
