"""What an official SDK client really sends: the bytes and headers of each request."""


class Sent:
    """Give `http_client(sdk)` to an ``openai`` or ``anthropic`` client; every
    request it sends is kept in `bodies` (bytes) and `headers`."""

    def __init__(self):
        self.bodies, self.headers = [], []

    def http_client(self, sdk):
        return sdk.DefaultHttpxClient(event_hooks={'request': [self._keep]})

    def _keep(self, request):
        self.bodies.append(request.read())
        self.headers.append(request.headers)
