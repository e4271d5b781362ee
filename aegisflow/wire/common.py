"""What every wire format's reader shares."""


def is_count(value):
    """A token count or an index: a non-negative integer, or absent."""
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    )


def count(value):
    """An upstream's token count as the gateway uses it: a count of another type
    (a string, a float, a negative number) is no count, never an error."""
    return value if is_count(value) and value is not None else 0
