"""A custom route strategy for the tests: the last target first."""


class LastFirst:
    def __init__(self, targets, state):
        self.calls = 0

    def order(self, targets, request):
        self.calls += 1
        return list(reversed(targets))


class NoOrder:
    pass
