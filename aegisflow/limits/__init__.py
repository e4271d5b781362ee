"""Rate limits, token limits, parallel limits and budgets, exact across workers."""
