"""snakepit_trio.contrib: integrations with other libraries, each behind an optional extra.

- ``snakepit_trio.contrib.otel``: OpenTelemetry traces and metrics for a pool (extra ``otel``).
- ``snakepit_trio.contrib.prometheus``: a Prometheus collector and a Trio task serving it
  (extra ``prometheus``).

Importing a module here without its extra raises ImportError naming the extra to install.
"""
