"""Public reporting: anyone may report content (a URL, a description, optionally a file) without
signing in. Reports are rate-limited per client (by an HMAC of its address, never the address),
size-capped, matched against the banks and put in the review queue as ``report`` alerts; the
reporter gets a reference number back::

    reports = PublicReports(known, ReportSettings.of(settings))
    receipt = reports.submit(NewReport(url="https://...", description="..."), client="203.0.113.9")
"""

from vigil.reports.references import is_reference, new_reference
from vigil.reports.service import (
    ACTOR,
    NewReport,
    PublicReports,
    RateLimited,
    Receipt,
    ReportError,
)
from vigil.reports.settings import ReportSettings

__all__ = [
    "ACTOR",
    "NewReport",
    "PublicReports",
    "RateLimited",
    "Receipt",
    "ReportError",
    "ReportSettings",
    "is_reference",
    "new_reference",
]
