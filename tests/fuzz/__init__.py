"""Fuzzing the API from its OpenAPI schema; ``FIGURES`` collects what the run did, for the summary."""

FIGURES: dict = {"requests": 0, "server_errors": 0, "failures": 0, "operations": set()}
