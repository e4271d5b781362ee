"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve traffic)."""

import orjson


class Health:
    def on_get(self, req, resp):
        resp.data = b'{"status":"ok"}'


class Ready:
    __slots__ = ('gw', 'checks')

    def __init__(self, gw, checks=()):
        self.gw = gw
        # Each check is a callable returning (name, ok, detail).
        self.checks = tuple(checks)

    def on_get(self, req, resp):
        results = {'config': {'ok': True, 'digest': self.gw.config.digest}}
        ready = True
        for check in self.checks:
            name, ok, detail = check()
            results[name] = {'ok': ok, 'detail': detail}
            ready = ready and ok
        resp.status = 200 if ready else 503
        resp.data = orjson.dumps(
            {'status': 'ready' if ready else 'not ready', 'checks': results}
        )
