"""Accounts and their networks: who posts harmful content and who amplifies it. Builds on post
monitoring (:mod:`vigil.text`): the ledger is a post hook that keeps every author's history,
risk (:mod:`vigil.networks.risk`) and links, and raises account alerts into the review queue;
the views read them back (:mod:`vigil.networks.views`: accounts by risk now, one account,
campaigns; :mod:`vigil.networks.graph`: a campaign's network as SVG;
:mod:`vigil.networks.export`: an account's evidence pack).
"""

from vigil.networks import risk
from vigil.networks.export import export_account
from vigil.networks.graph import campaign_graph, render_graph_svg
from vigil.networks.ledger import AccountLedger
from vigil.networks.settings import NetworkSettings
from vigil.networks.views import account_list, account_view, campaign_list, campaign_view

__all__ = [
    "AccountLedger",
    "NetworkSettings",
    "account_list",
    "account_view",
    "campaign_graph",
    "campaign_list",
    "campaign_view",
    "export_account",
    "render_graph_svg",
    "risk",
]
