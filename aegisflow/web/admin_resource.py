"""What every admin API resource holds: the gateway and the admin key check."""

from aegisflow.errors import InvalidRequest


class AdminResource:
    __slots__ = ('gw', 'auth')

    def __init__(self, gw, auth):
        self.gw = gw
        self.auth = auth


def single_params(req):
    """The query parameters, each given once (a repeated one is refused: which of
    its values counts would be a guess)."""
    params = req.params
    for name, value in params.items():
        if not isinstance(value, str):
            raise InvalidRequest(
                f"Query parameter '{name[:40]}' is given more than once.",
                param=name[:40],
            )
    return params
