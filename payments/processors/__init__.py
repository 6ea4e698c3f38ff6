"""Payment processors: one ``Protocol`` (``base.Processor``), a deterministic sandbox (the default) and the
registry that picks one per organization (``registry.processor_for``). See docs/payments.md."""
