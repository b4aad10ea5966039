"""`python -m llmselect.cli`, the same as `llmselect`."""

from llmselect.cli import app

app()
