"""presentation: what a person reads, drawn from saved results.

Plain-language comparisons (``narrative``), the report's figures (``figures``) and the
self-contained HTML report of a run or a sweep (``report``). Above experiments and
validation, below the CLI.
"""
