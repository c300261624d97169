"""The ``hand2robot`` command line: one module per command group over the library's configs.

- :mod:`~pipeline.cli.app`: the application, help formatting, consoles, exit codes, ``main``;
- :mod:`~pipeline.cli.options`: the shared options, declared once per group;
- :mod:`~pipeline.cli.render`: tables and progress;
- :mod:`~pipeline.cli.extract`, :mod:`~pipeline.cli.retarget`, :mod:`~pipeline.cli.batch`,
  :mod:`~pipeline.cli.show` (``robots``, ``inspect``, ``viz``): the commands.

Exit codes: 0 success; 2 bad input or usage (the message says what and lists valid choices);
3 and 4 ``batch`` partial and failed; 130 interrupted (Ctrl-C); 1 an unexpected internal error.
"""

from pipeline.cli import adopt, batch, extract, retarget, show  # noqa: F401 - each registers commands
from pipeline.cli.app import app, main

__all__ = ["app", "main"]
