"""The Flash core: Task, Trainer, registries and finetuning strategies."""
