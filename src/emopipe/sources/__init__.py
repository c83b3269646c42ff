"""Corpus readers: one module per on-disk layout, each turning a corpus root into clips + quarantine rows."""
