"""Training data for the aligner from Debian packages (see scripts/training-data.py).

One concern per module: `manifest` (pinned packages, download, hash check), `catalogs`
(.mo files), `clean` (per-entry filters), `gold` (evaluation text kept out), `build`
(dedupe, caps, output files and counters), `lexicon` (FreeDict dictionaries), `report`
(README's tables).
"""
