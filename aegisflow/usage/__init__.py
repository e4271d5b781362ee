"""Usage: the per-request ledger and its queries."""
