"""Run by `accelerate launch --num_processes 2 --cpu` in test_distributed.py: a tiny MAN-MoE training."""

import json
import os
import sys

import torch
import transformers

from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from tests.synthetic import synthetic_model, synthetic_task

transformers.logging.set_verbosity_error()
output_dir, mode = sys.argv[1], sys.argv[2]
config, tokenizer, table, data = synthetic_task(adversarial_lambda=0.05)
model = synthetic_model(config, table)
args = ManMoeTrainingArguments(
    output_dir=output_dir,
    adversarial_mode=mode,
    max_steps=6,
    gradient_accumulation_steps=2,
    per_device_train_batch_size=4,
    logging_steps=2,
    eval_strategy="steps",
    eval_steps=3,
    save_strategy="no",
    disable_tqdm=True,
    use_cpu=True,
)
discriminator_gradients = []  # at each main optimizer step: does any of D's parameters hold a gradient?


class WatchDiscriminatorGradients(transformers.TrainerCallback):
    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        unwrapped = model.module if hasattr(model, "module") else model
        discriminator_gradients.append(any(p.grad is not None for p in unwrapped.manmoe.discriminator.parameters()))


trainer = ManMoeTrainer(
    model=model,
    args=args,
    train_dataset=data,
    eval_dataset={"en": data["en"], "nl": data["nl"]},
    processing_class=tokenizer,
    callbacks=[WatchDiscriminatorGradients()],
)
trainer.train()
# every process must hold the same weights (main model through DDP, D through the trainer's own all-reduce)
unwrapped = trainer.accelerator.unwrap_model(trainer.model)
checksums = torch.stack([p.detach().double().sum() for p in unwrapped.parameters()])[None]
gathered = trainer.accelerator.gather(checksums)
if trainer.is_world_process_zero():
    with open(f"{output_dir}/log_history.json", "w") as handle:
        json.dump(
            {
                "world_size": trainer.args.world_size,
                "log_history": trainer.state.log_history,
                "weights_in_sync": bool(torch.allclose(gathered[0], gathered[1])),
                "discriminator_gradients_at_main_steps": discriminator_gradients,
            },
            handle,
        )
# a clean shutdown: without it gloo may abort at interpreter exit ("terminate called without an active exception")
trainer.accelerator.wait_for_everyone()
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
# Even so, gloo's worker threads can still hold tensors whose release during interpreter finalization aborts the
# process (SIGABRT, seen once in CI on a loaded machine; pytorch/pytorch#179291). Everything is written: leave
# without finalization.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
