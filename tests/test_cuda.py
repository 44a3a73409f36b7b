"""On a GPU the model computes what it computes on CPU, through other code: the BiLSTMs run as `nn.LSTM` on packed
sequences (cuDNN) instead of `lockstep_bidirectional_lstm`, the CharCNN and the experts on CUDA tensors. Logits,
losses and every parameter's gradient on the GPU equal the CPU's (float32, TF32 off, up to rounding): in prediction,
for gradients of an eval-mode model (cuDNN's LSTM has no backward in eval mode: `BiLSTMEncoder` turns cuDNN off
there) and in training mode. `ManMoeTrainer` trains and predicts there, and builds an encoder feature cache there.
Skipped where no CUDA device is present."""

import copy

import pytest
import torch
import transformers

from modeling_manmoe import ManMoeConfig, ManMoeForSequenceClassification, ManMoeForTokenClassification
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from modeling_manmoe.training.batching import EncodedDataset
from tests.conftest import TINY, random_batch
from tests.synthetic import synthetic_model, synthetic_task
from tests.test_modeling import build

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
transformers.logging.set_verbosity_error()


@pytest.fixture(autouse=True)
def full_float32():
    """cuDNN may take TF32 (10-bit mantissas) for float32 products by default: off, to compare with the CPU."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def outputs_and_gradients(model, batch, gradients: bool = True):
    model.zero_grad(set_to_none=True)
    with torch.enable_grad() if gradients else torch.no_grad():
        out = model(**batch, return_language_logits=True)
        if gradients:
            (out.loss + out.language_logits.logsumexp(-1).sum()).backward()  # D's parameters get gradients too
    values = {
        name: getattr(out, name).detach().cpu()
        for name in ("loss", "logits", "private_gate_logits", "predictor_gate_logits", "language_logits")
    }
    return values, {name: p.grad.detach().cpu() for name, p in model.named_parameters() if p.grad is not None}


NO_DROPOUT = {f"{part}_dropout": 0.0 for part in ("char", "discriminator", "expert", "input", "lstm", "predictor")}


@pytest.mark.parametrize("cls, labels", [(ManMoeForTokenClassification, None), (ManMoeForSequenceClassification, 2)])
@pytest.mark.parametrize(
    "mode, gradients",
    [("eval", False), ("eval", True), ("train", True)],
    ids=["prediction (cuDNN)", "eval-mode gradients (cuDNN off)", "training, no dropout (cuDNN)"],
)
def test_gpu_outputs_and_gradients_equal_the_cpus(cls, labels, mode, gradients):
    config = ManMoeConfig(**{**TINY, **NO_DROPOUT, **({"num_labels": labels} if labels else {})})
    model = build(config, cls).train(mode == "train")
    batch = random_batch(config, batch=4, words=9, lengths=[9, 3, 6, 1])
    if labels:
        batch["labels"] = torch.tensor([0, 1, 1, 0])
    cpu_values, cpu_gradients = outputs_and_gradients(model, batch, gradients)
    gpu_model = copy.deepcopy(model).cuda()
    gpu_batch = {key: value.cuda() for key, value in batch.items()}
    gpu_values, gpu_gradients = outputs_and_gradients(gpu_model, gpu_batch, gradients)
    for name, value in cpu_values.items():
        torch.testing.assert_close(gpu_values[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert gpu_gradients.keys() == cpu_gradients.keys() and (len(cpu_gradients) > 20) == gradients
    for name, gradient in cpu_gradients.items():
        torch.testing.assert_close(gpu_gradients[name], gradient, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("cls, labels", [(ManMoeForTokenClassification, None), (ManMoeForSequenceClassification, 2)])
def test_bfloat16_autocast_predicts_near_float32_and_trains(cls, labels):
    """Under `torch.autocast("cuda", dtype=torch.bfloat16)` (what `--bf16` gives on a GPU) the model predicts close
    to float32 (bfloat16 keeps 8 bits of mantissa) and a training step's loss has finite gradients everywhere.
    Before, the CharCNN failed there: its bfloat16 features were copied into a float32 tensor."""
    config = ManMoeConfig(**{**TINY, **({"num_labels": labels} if labels else {})})
    model = build(config, cls).cuda().eval()
    batch = {key: value.cuda() for key, value in random_batch(config, batch=4, words=9, lengths=[9, 3, 6, 1]).items()}
    if labels:
        batch["labels"] = torch.tensor([0, 1, 1, 0], device="cuda")
    with torch.no_grad():
        reference = model(**batch, return_language_logits=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(**batch, return_language_logits=True)
    for name in ("logits", "language_logits"):
        torch.testing.assert_close(getattr(low, name).float(), getattr(reference, name), rtol=0.05, atol=0.05)
    model.train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(**batch, return_language_logits=True)
        (out.loss + out.language_logits.float().logsumexp(-1).sum()).backward()
    gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert len(gradients) > 20
    assert all(bool(torch.isfinite(g).all()) for g in gradients.values()), "a non-finite gradient"


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16"])
def test_trainer_trains_and_predicts_on_the_gpu(tmp_path, bf16):
    config, tokenizer, table, data = synthetic_task()
    model = synthetic_model(config, table)
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), max_steps=45, per_device_train_batch_size=4,
                                   save_strategy="no", logging_steps=15, disable_tqdm=True, seed=0,
                                   learning_rate=1e-2, report_to=[], bf16=bf16)  # fmt: skip
    trainer = ManMoeTrainer(model=model, args=args, train_dataset=data, eval_dataset={"en": data["en"]},
                            processing_class=tokenizer)  # fmt: skip
    assert trainer.args.device.type == "cuda"
    before = trainer.evaluate()["eval_en_loss"]
    trainer.train()
    assert next(trainer.model.parameters()).device.type == "cuda"
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs[-1]["task_loss_en"] < logs[0]["task_loss_en"]
    assert trainer.evaluate()["eval_en_loss"] < before
    nl = EncodedDataset(trainer.encode_dataset(data["nl"], tokenizer, "nl", trainer.label_column), "nl")
    output = trainer.predict(nl)
    assert output.predictions.shape[0] == len(data["nl"]) and output.metrics["test_f1"] > 0


def test_the_encoder_feature_cache_is_built_on_the_gpu_and_trains_like_the_live_encoder(tmp_path):
    """Encoder mode: `ManMoeTrainer` builds the feature cache with the encoder on its own device (the GPU), not
    where the model was created (the CPU), and training from the cache gives the model of the live encoder."""
    from tests.test_feature_cache import training_run
    from tests.tiny_encoder import make_tiny_encoder

    encoder_dir = make_tiny_encoder(tmp_path / "encoder")
    live = training_run(encoder_dir, tmp_path / "live", layers=(0, 1, 2), use_cpu=False)
    cached = training_run(encoder_dir, tmp_path / "cached", cache_dir=tmp_path / "cache", layers=(0, 1, 2),
                          use_cpu=False)  # fmt: skip
    assert live.keys() == cached.keys()
    for name in live:
        assert live[name].device.type == "cuda", name
        torch.testing.assert_close(cached[name], live[name], rtol=1e-4, atol=1e-5, msg=name)
