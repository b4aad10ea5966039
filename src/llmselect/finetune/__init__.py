"""Fine-tuning as a library: data readiness, LoRA/QLoRA/full training, before and after.

- `config`: the run's settings and records (TrainConfig, BaseModelRef, TrainStep, TrainRun)
- `study`: what the library reads of a study (a protocol the selection study meets)
- `data`: training examples, as prompts and completions, then as token ids
- `data_check`: is a data set ready? (`llmselect data check`); `near_duplicates` finds repeats
- `gate`: the license gate before training
- `preflight`: memory and time on the target hardware, before any weights are loaded
- `model`: the training device, the tokenizer, the weights and their LoRA adapters
- `checkpoints`: a run's whole state, saved and resumed
- `loop`: the training loop
- `outputs`: the adapter or model folder, and an adapter merged into its base
- `card`: the model card (README.md)
- `curve`: before and after, and the learning curve
- `result`: the job's summary (`finetune.json`)

`llmselect.jobs.finetune` composes them into `llmselect finetune`.
"""
