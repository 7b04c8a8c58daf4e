"""The ``snakepit-trio`` subcommands beyond ``cleanup``: doctor, status and new.

Each module adds its parser (``add_parser``) and runs it (``run``); ``_cli.main`` wires them.
``_doctor.py`` checks this machine (and an adapter), ``_status.py`` shows live pools through
their control endpoints, ``_new.py`` writes an adapter package from ``templates/``,
``_table.py`` prints rows as plain text or JSON.
"""
