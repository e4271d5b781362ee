"""What every admin API resource holds: the gateway and the admin key check."""


class AdminResource:
    __slots__ = ('gw', 'auth')

    def __init__(self, gw, auth):
        self.gw = gw
        self.auth = auth
