"""Prometheus counters of hashing work, exported by ``GET /metrics`` (the default registry)."""

from __future__ import annotations

from prometheus_client import Counter

from vigil.hashing.hasher import HashResult
from vigil.hashing.matcher import MatchReport

# Process-wide, in the default registry with the process_* and python_* collectors.
HASHES = Counter(
    "vigil_hashes", "Signals computed (uploads and bank entries), by signal type.", ["signal_type"]
)
MATCHES = Counter(
    "vigil_matches",
    "Matches found, by signal type, bank and outcome (matched, suppressed, benign).",
    ["signal_type", "bank", "outcome"],
)


def count_hashes(result: HashResult) -> HashResult:
    """Count ``result``'s signals and hand it back (for ``return count_hashes(...)``)."""
    for signal in result.signals:
        HASHES.labels(signal.signal_type).inc()
    return result


def count_matches(report: MatchReport) -> MatchReport:
    """Count ``report``'s matches and hand it back."""
    for outcome, found in (
        ("matched", report.matches),
        ("suppressed", report.suppressed),
        ("benign", report.benign),
    ):
        for match in found:
            MATCHES.labels(match.signal_type, match.bank, outcome).inc()
    return report
