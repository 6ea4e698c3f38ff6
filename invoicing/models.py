"""Models arrive with their issue; the app is registered so migrations and layers are in place."""
