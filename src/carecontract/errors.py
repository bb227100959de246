"""The one base class for errors a user can fix, as ehrQL keeps its user-facing errors in one place.

Why one base class: the CLI and the service turn exactly these into a one-line message (exit 2,
or an HTTP 4xx); anything else is a bug and keeps its traceback. Before, every ``ValueError``
was shown as a red line, so a real defect (an unbalanced transaction, say) hid as a user mistake.

Library modules subclass :class:`UserError` for the mistakes they detect (an unreadable file, a
store opened with the wrong key, a terms file that does not validate, an unknown measure ...).
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user asked for cannot be done as asked; the message says what to change."""
