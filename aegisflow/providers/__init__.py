"""Provider types by config name; `build_providers` makes one object per provider."""

from aegisflow.providers.anthropic import AnthropicProvider
from aegisflow.providers.base import Provider
from aegisflow.providers.mock import MockProvider
from aegisflow.providers.ollama import OllamaProvider
from aegisflow.providers.openai import OpenAIProvider

TYPES = {
    'mock': MockProvider,
    'openai': OpenAIProvider,
    'openai_compatible': OpenAIProvider,
    'anthropic': AnthropicProvider,
    'ollama': OllamaProvider,
}


def build_providers(config, *, concurrency=1):
    options = {
        'concurrency': concurrency,
        'max_retry_after_s': config.retry.max_retry_after_s,
    }
    return {p.name: TYPES[p.type](p, **options) for p in config.providers}


__all__ = ['Provider', 'TYPES', 'build_providers']
