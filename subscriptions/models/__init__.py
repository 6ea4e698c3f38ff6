"""subscriptions models, one module per aggregate; each is imported here so Django finds it."""
