"""Configuration: YAML in, validated immutable objects out (DESIGN §5)."""

from aegisflow.config.loader import ConfigError
from aegisflow.config.loader import load_config
from aegisflow.config.loader import parse_config
from aegisflow.config.model import Config

__all__ = ['Config', 'ConfigError', 'load_config', 'parse_config']
