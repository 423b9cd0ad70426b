"""Settings of post monitoring, on top of :class:`vigil.config.Settings` (same ``VIGIL_*``
environment, same file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vigil.pseudonyms import PseudonymSettings


class TextSettings(PseudonymSettings):
    """Post monitoring's settings; pseudonymisation (applied at ingest) is
    :class:`vigil.pseudonyms.PseudonymSettings`'s."""

    text_model: Path | None = Field(
        default=None,
        description="The classifier artifact (text.npz + text.json); default: the shipped one "
        "(`vigil train text` makes another).",
    )
    text_lexicon: Path | None = Field(
        default=None,
        description="A lexicon file of your own (same JSON as the shipped one); its entries "
        "are added to the shipped list, and replace shipped entries with the same id.",
    )
    text_alert_labels: list[str] = Field(
        default=["threat_incitement", "terror_support", "hate"],
        description="Labels whose flagged posts go to the review queue. Offensive posts are "
        "kept and scored (account histories count them) but do not alert by default.",
    )
    text_lexicon_alert_weight: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="A lexicon hit of at least this weight (a slogan, a coded call to arms) "
        "alerts on its own; a weaker one (a bare organisation name, as in any news report) "
        "only explains an alert the classifier raised.",
    )
    text_campaign_min_posts: int = Field(
        default=3,
        ge=2,
        description="A cluster of near-duplicate posts becomes one queue item once it holds "
        "this many posts and at least one of them is flagged.",
    )
    text_campaign_window_hours: float = Field(
        default=168.0, gt=0, description="How long a post can still join a campaign."
    )
    text_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Posts per transaction when scanning."
    )
    text_attachments: bool = Field(
        default=True,
        description="Read image attachments: OCR their text through the classifiers and match "
        "them against the banks (about 0.5 s per image).",
    )
    text_fetch_attachment_urls: bool = Field(
        default=False,
        description="Download attachments given as URLs (through the SSRF guard); off by "
        "default, since it makes vigil fetch addresses a post chose.",
    )
    text_queue: bool = Field(
        default=False,
        description="`POST /v1/posts` puts the posts on the bus's posts queue (VIGIL_BUS_URL, "
        "a bus other processes share) for `vigil worker --role posts` instead of scanning them "
        "in the request: `vigil serve` stays stateless and scanning scales with the workers. "
        "The response then counts posts queued, not scanned.",
    )
    text_max_push_posts: int = Field(
        default=1_000, ge=1, le=100_000, description="Posts per `POST /v1/posts` request."
    )
    text_max_push_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Largest `POST /v1/posts` body."
    )
    text_max_file_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="Largest whole-document export (a Telegram result.json) read at once.",
    )
