"""Fine-tuning: data readiness, LoRA/QLoRA/full training, before-and-after comparison."""
