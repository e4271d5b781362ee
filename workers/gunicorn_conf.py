# Gunicorn settings for AegisFlow: everything comes from the AegisFlow config file
# ($AEGISFLOW_CONFIG, default conf/aegisflow.yaml). Re-executed on every SIGHUP.
from workers.settings import gunicorn_settings

globals().update(gunicorn_settings())
