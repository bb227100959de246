"""``python -m carecontract.cli``: the same as the ``carecontract`` command."""

from carecontract.cli import app

app()
