#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    # Beside a running `make run` (same DATA_DIR): take its environment (embedded servers, secret key,
    # hosts) for what the caller's environment does not set. Nothing otherwise: production sets its own.
    from billing_project.core.embedded import stack_env_read

    for name, value in stack_env_read().items():
        os.environ.setdefault(name, value)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
