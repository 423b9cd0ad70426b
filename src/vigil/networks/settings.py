"""Settings of account histories and networks, on top of :class:`vigil.config.Settings` (same
``VIGIL_*`` environment, same file). :mod:`vigil.networks.risk` documents the formula the
weights enter; docs/accounts.md gives the reasoning behind the defaults."""

from __future__ import annotations

from pydantic import Field

from vigil.pseudonyms import PseudonymSettings


class NetworkSettings(PseudonymSettings):
    accounts_risk_threshold: float = Field(
        default=25.0,
        gt=0,
        description="An account whose risk reaches this raises an account alert.",
    )
    accounts_half_life_hours: float = Field(
        default=72.0, gt=0, description="A post's part in an account's risk halves this often."
    )
    accounts_severity_weight: float = Field(
        default=10.0,
        ge=0,
        description="w_s: a flagged post adds w_s * (severity/10)^2 * likelihood.",
    )
    accounts_volume_weight: float = Field(
        default=8.0,
        ge=0,
        description="w_v: n flagged posts within an hour add w_v * (severity/10) * ln(n) more.",
    )
    accounts_decision_weight: float = Field(
        default=0.5,
        ge=0,
        description="w_d: each confirmed or referred alert on the account multiplies what its "
        "later posts add by (1 + w_d * decisions).",
    )
    accounts_rearm_margin: float = Field(
        default=0.5,
        ge=0,
        description="After its alert was decided (dismissed, confirmed, referred), an account "
        "alerts again only once its risk exceeds the risk it was decided at by this share.",
    )
