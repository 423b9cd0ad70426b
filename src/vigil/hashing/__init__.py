"""Known-content matching: hash images and videos, keep hash banks, match fast."""
