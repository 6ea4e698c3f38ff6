"""Customer portal pages (interface only): server-rendered views over selectors. Pages arrive with the portal issue."""
