"""Codecs of the wire formats the gateway speaks besides its own chat form, each
used both inbound (a client speaks it) and by the provider adapter (an upstream
speaks it)."""
