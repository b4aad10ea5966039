"""Where `console.py`'s type hints still look for the job's result types (they lived here
before this module was split); new code imports them from `result` and `preflight`."""

from llmselect.finetune.preflight import Preflight as Preflight
from llmselect.finetune.result import FinetuneResult as FinetuneResult
