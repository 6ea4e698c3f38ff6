"""Invoicing services (writes). Import the module you need: ``from invoicing.services import metering``."""
