"""`llmselect demo`: the whole pipeline on small models built on this machine."""

from llmselect.demo.models import DemoBuild, DemoModel, build_demo

__all__ = ["DemoBuild", "DemoModel", "build_demo"]
