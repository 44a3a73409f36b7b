"""The adversary has a measurable effect: shared features trained against D carry less language information.

On the synthetic task (tests/synthetic.py) every word vector carries a strong language signature, so a BiLSTM
trained without an adversary passes the language on and a probe reads it off every word. Trained against D, F_s
learns to cancel the signature. The measure is a fresh probe, trained after training on the frozen shared
features of half the sentences: a linear classifier of each word's language, scored on the other half's words.
(A probe as strong as D itself, trained long enough, can still find some language information: adversarial
training makes features hard for the current D to read, it does not erase them.)

The effect varies much from seed to seed on this task (one seed's probe accuracy with the adversary ranges over
0.45-0.94), and with lambda = 1 the training is chaotic: a change of float rounding alone moves a seed's probe
accuracy by up to 0.18, while with lambda = 0 the same rounding changes left every seed's accuracy unchanged to the
third decimal. So the test compares means over eight seeds, single-threaded (bitwise reproducible), two runs at a
time in separate processes, against a margin of 0.04. Measured (gradient reversal, lambda = 1 vs 0, 300 steps,
seeds 0-7): mean probe accuracy 0.767 vs 0.816 (lower with the adversary for 5 of the 8 seeds); two earlier states
of the same code, differing only in float rounding, gave 0.742 and 0.775; with the BiLSTM as `nn.LSTM` and D's
per-language `conv1d` (the same functions, other rounding and dropout draws) 0.715 vs 0.845. Three
seeds alone moved the gap between 0.02 and 0.19. In alternating mode (the paper's) the same
probe showed no consistent gap in our trials (one seed 0.56 vs 0.87, another 0.83 vs 0.81): maximising D's loss can
also make the features separable in a way the current D reads wrongly. On real CoNLL the logged D accuracy is what
shows the adversary at work (README, "Training notes").
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch
import transformers

from modeling_manmoe.tokenization_manmoe import collate_word_features
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments, encode_sentences
from tests.synthetic import synthetic_model, synthetic_task

transformers.logging.set_verbosity_error()


def train_shared_extractor(tmp_path, adversarial_lambda: float, seed: int, steps: int = 300):
    config, tokenizer, table, data = synthetic_task(sentences_per_language=96, adversarial_lambda=adversarial_lambda)
    model = synthetic_model(config, table, seed)
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=8,
                                   learning_rate=1e-2, adversarial_mode="gradient_reversal", save_strategy="no",
                                   logging_steps=50, disable_tqdm=True, report_to=[], seed=seed, use_cpu=True)  # fmt: skip
    trainer = ManMoeTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    return model.eval(), tokenizer, data, trainer.state.log_history


def word_language_probe_accuracy(model, tokenizer, data) -> float:
    """Accuracy of a linear probe of each word's language from its frozen h_s (train on even sentences, score on
    odd ones)."""
    features, languages, held_out = [], [], []
    for lang_id, language in enumerate(model.config.all_languages):
        batch = collate_word_features(encode_sentences(data[language], tokenizer, language, None))
        with torch.no_grad():
            shared = model.manmoe.shared_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"].bool()
        sentence = torch.arange(mask.shape[0]).unsqueeze(1).expand_as(mask)
        features.append(shared[mask])
        languages.append(torch.full((int(mask.sum()),), lang_id))
        held_out.append(sentence[mask] % 2 == 1)
    x, y, test = torch.cat(features), torch.cat(languages), torch.cat(held_out)
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], len(model.config.all_languages))
    optimizer = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(500):
        loss = torch.nn.functional.cross_entropy(probe(x[~test]), y[~test])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (probe(x[test]).argmax(-1) == y[test]).float().mean().item()


@pytest.mark.slow
def test_adversary_removes_language_information_from_shared_features(tmp_path):
    """Mean probe accuracy over eight seeds, with and without the adversary (gradient reversal, lambda = 1)."""
    accuracy = probe_accuracies(tmp_path)
    assert accuracy[0.0] > 0.7, f"without the adversary the language should be easy to read off h_s ({accuracy})"
    assert accuracy[1.0] < accuracy[0.0] - 0.04, accuracy


def probe_run(adversarial_lambda: float, seed: int, folder: str) -> tuple[float, float]:
    """One training run and its probe, single-threaded (bitwise reproducible): (probe accuracy, last English task
    loss)."""
    torch.set_num_threads(1)
    model, tokenizer, data, logs = train_shared_extractor(folder, adversarial_lambda, seed)
    last = [entry for entry in logs if "loss" in entry][-1]
    return word_language_probe_accuracy(model, tokenizer, data), last["task_loss_en"]


def probe_accuracies(tmp_path) -> dict[float, float]:
    """The sixteen runs (lambda 0 and 1, seeds 0-7), two at a time in fresh single-threaded processes; the mean probe
    accuracy per lambda."""
    runs = [(adversarial_lambda, seed) for adversarial_lambda in (0.0, 1.0) for seed in range(8)]
    folders = [str(tmp_path / f"{adversarial_lambda}-{seed}") for adversarial_lambda, seed in runs]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(probe_run, *zip(*runs, strict=True), folders))
    accuracy = {}
    for adversarial_lambda in (0.0, 1.0):
        scores = [score for (lam, _), (score, _) in zip(runs, results, strict=True) if lam == adversarial_lambda]
        losses = [loss for (lam, _), (_, loss) in zip(runs, results, strict=True) if lam == adversarial_lambda]
        assert max(losses) < 1.0, f"the adversary must not stop the task from being learned ({losses})"
        accuracy[adversarial_lambda] = sum(scores) / len(scores)
        print(f"lambda={adversarial_lambda}: probe accuracy per seed {[round(x, 3) for x in scores]}")
    return accuracy
