"""An adapter module that raises while it is imported, as one reading missing config does."""

raise RuntimeError("config file missing: /etc/app.toml")
