"""The `auptimate` command line (the click group is wired here by the CLI developer)."""
