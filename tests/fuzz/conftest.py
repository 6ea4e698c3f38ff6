from __future__ import annotations

from tests.fuzz import FIGURES


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FIGURES["requests"]:
        return
    terminalreporter.write_line(
        f"schemathesis: {FIGURES['requests']} requests over {len(FIGURES['operations'])} operations, "
        f"{FIGURES['server_errors']} server errors, {FIGURES['failures']} failed checks")
