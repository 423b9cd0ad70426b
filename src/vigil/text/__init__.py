"""Post monitoring: multilingual triage of public posts for threats and incitement, terrorist
support, hate and offensive language. Data flows ingest (adapters) → normalize → classify
(a cheap first stage, the multilingual model where it matters) + lexicon → campaigns → triage
→ alerts in the review queue.
"""

from vigil.text.hooks import PostHook, StoredPost

__all__ = ["PostHook", "StoredPost"]
