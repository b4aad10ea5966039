"""The jobs: the only place that runs stages one after another (evaluate, select, fine-tune).

A command parses its options, calls one job (or one stage function), and hands the typed result
to the presentation. Stage packages never import a job.
"""
