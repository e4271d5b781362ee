"""Master-owned process state, inherited by every worker through fork.

`gunicorn.conf.py` is re-executed on every SIGHUP, so nothing lives there; the
validated config lives here instead. Workers read `current` after fork: they never
parse the config file themselves, so a file broken after start cannot stop a
respawned worker from booting.
"""

current = None  # the Config serving now
path = None  # the file it came from
runtime = None  # the MasterRuntime (segment, slots, aggregator), built with the config
