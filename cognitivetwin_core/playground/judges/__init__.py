"""Judges of a twin that never saw its training (docs/judging.md): an authorship verifier,
a classifier asked to tell real from twin, the person's blind choice, and the report."""
