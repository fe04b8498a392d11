"""CLI command modules; see registry.install for the order they appear in `--help`."""
