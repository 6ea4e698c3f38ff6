"""Invoicing selectors (reads). Import the module you need: ``from invoicing.selectors import metering``."""
