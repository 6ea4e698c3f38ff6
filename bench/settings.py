"""Bench settings: exactly the product's settings, plus the baseline route (``bench.urls``).

The product and the baseline are served by the same gunicorn processes with the same middleware,
authentication, renderer, parser and database settings, so the only difference is the view."""

from billing_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
