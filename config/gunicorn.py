"""gunicorn's settings for ``manage.py serve`` (which passes the bind address,
workers, threads and timeout from the environment, checked by Django's
settings). What is here does not change between deployments."""

import os

worker_class = "gthread"
# Each worker loads the application itself: no database connection, thread
# or SDK client is shared across a fork.
preload_app = False
# One line per request on stderr; each worker's Django logging (LOG_FORMAT)
# takes over the gunicorn.access and gunicorn.error loggers.
accesslog = "-"
errorlog = "-"
# A worker restarts after this many requests (and up to 10% more, so they do
# not all restart together): what a long life could leak is given back.
max_requests = 2000
max_requests_jitter = 200
graceful_timeout = 30
# The TLS proxy in front says which scheme the client used
# (X-Forwarded-Proto, settings.HTTPS); trust it only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# No control socket (gunicorn 27's gunicornc interface): one path per user
# would be shared by every console on the machine, and nothing here uses it.
control_socket_disable = True
