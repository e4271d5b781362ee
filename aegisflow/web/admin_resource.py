"""What every admin API resource holds: the gateway and the admin key check."""

from falcon.uri import parse_query_string

from aegisflow.errors import InvalidRequest


class AdminResource:
    __slots__ = ('gw', 'auth')

    def __init__(self, gw, auth):
        self.gw = gw
        self.auth = auth


def single_params(req):
    """The query parameters, each given once (a repeated one is refused: which of
    its values counts would be a guess) and none empty: ``?tenant=`` from a script
    whose variable was unset must not read as no filter at all (a cache purge of
    every tenant), so it is refused rather than dropped."""
    for name, value in parse_query_string(req.query_string, keep_blank=True).items():
        if value == '' or (isinstance(value, list) and '' in value):
            raise InvalidRequest(
                f"Query parameter '{name[:40]}' is empty; leave it out to mean "
                'its default.',
                param=name[:40],
            )
    params = req.params
    for name, value in params.items():
        if not isinstance(value, str):
            raise InvalidRequest(
                f"Query parameter '{name[:40]}' is given more than once.",
                param=name[:40],
            )
    return params


def the_change(body, known):
    """The fields a PATCH body sets (``null`` removes a field, so it is no change
    to check), keeping an unknown one even when null: it is refused by name."""
    return {k: v for k, v in body.items() if v is not None or k not in known}
