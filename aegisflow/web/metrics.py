"""``GET /metrics``: the Prometheus exposition, the same whichever worker answers;
OpenMetrics (histograms with exemplars: the trace of a sampled request per bucket)
when the scraper's ``Accept`` asks for ``application/openmetrics-text``.

When ``telemetry.metrics_token_env`` is set, the scraper must send that token as
``Authorization: Bearer <token>``; metrics name tenants and models.
"""

import hmac

from aegisflow.errors import AuthenticationFailed
from aegisflow.errors import NotFound
from aegisflow.telemetry.metrics import CONTENT_TYPE
from aegisflow.telemetry.metrics import OPENMETRICS_TYPE


class Metrics:
    __slots__ = ('gw', 'token')

    def __init__(self, gw):
        self.gw = gw
        token = gw.config.telemetry.metrics_token
        self.token = f'Bearer {token}'.encode() if token else None

    def on_get(self, req, resp):
        if not self.gw.config.telemetry.metrics:
            raise NotFound(
                'Metrics are switched off (telemetry.metrics: false).',
                code='unknown_url',
            )
        if self.token is not None:
            sent = (req.get_header('Authorization') or '').encode('utf-8', 'replace')
            if not hmac.compare_digest(sent, self.token):
                raise AuthenticationFailed('Metrics need the metrics bearer token.')
        # NOTE: Prometheus asks for OpenMetrics (with exemplars) in its Accept
        openmetrics = 'application/openmetrics-text' in (req.accept or '')
        resp.data = self.gw.telemetry.metrics(openmetrics)
        resp.content_type = OPENMETRICS_TYPE if openmetrics else CONTENT_TYPE
