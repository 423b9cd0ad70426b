"""The parts of :mod:`vigil.text.classify`: features (canonical text, hashed n-grams and their
phrase contributions), the e5 embedding of the full stage, and the heads."""
