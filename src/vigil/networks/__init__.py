"""Accounts and their networks: who posts harmful content and who amplifies it. Builds on post
monitoring (:mod:`vigil.text`): the ledger is a post hook that keeps every author's history,
risk (:mod:`vigil.networks.risk`) and links, and raises account alerts into the review queue.
"""

from vigil.networks import risk
from vigil.networks.ledger import AccountLedger
from vigil.networks.settings import NetworkSettings

__all__ = ["AccountLedger", "NetworkSettings", "risk"]
