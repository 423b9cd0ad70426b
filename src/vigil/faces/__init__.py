"""Retrospective face search against governed watchlists (issue 6)."""
