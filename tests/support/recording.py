"""What an official SDK client really sends: the bytes and headers of each request."""


class Recorded:
    """An ``openai`` or ``anthropic`` client (`sdk`, the module) for `base_url`
    and `key` that keeps every request it sends: bytes in `sent`, headers in
    `headers`."""

    def __init__(self, sdk, base_url, key):
        self.sent, self.headers = [], []
        make = getattr(sdk, 'Anthropic', None) or sdk.OpenAI
        self.client = make(
            base_url=base_url,
            api_key=key,
            max_retries=0,
            http_client=sdk.DefaultHttpxClient(event_hooks={'request': [self._keep]}),
        )

    def _keep(self, request):
        self.sent.append(request.read())
        self.headers.append(request.headers)
