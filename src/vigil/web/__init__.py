"""The review console: server-rendered pages (Jinja2) with a little vanilla JavaScript, shipped
in this package: no CDN, no build step. Pages read through the same service functions as the
API; every change goes through the API's REST routes with the session cookie and its CSRF token,
so the console can do nothing the API would not let the same person do.

:func:`install` mounts the console at ``/console`` and the public report form at ``/report``.
"""

from vigil.web.app import CONSOLE_PREFIX, REPORT_PATH, install

__all__ = ["CONSOLE_PREFIX", "REPORT_PATH", "install"]
