"""`RealWords`: the real words' features of a padded batch, and the heads that read them without padding."""

import torch

from modeling_manmoe import ManMoeConfig
from modeling_manmoe.real_words import RealWords
from tests.conftest import TINY, random_batch
from tests.test_modeling import build


def grid(lengths: list[int], width: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded (batch, width, dim) tensor, zeros past each row's length, and its mask."""
    mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).long()
    return torch.randn(len(lengths), width, dim) * mask[..., None], mask


def test_from_padded_and_back():
    padded, mask = grid([3, 1, 4], width=5, dim=2)
    words = RealWords.from_padded(padded, mask)
    assert words.values.shape == (8, 2) and words.grid == (3, 5)
    assert torch.equal(words.padded(), padded)
    assert torch.equal(words.mask(), mask.bool())


def test_any_row_order_gives_the_same_grid_and_rows_at_positions():
    padded, mask = grid([2, 5, 3], width=6, dim=4)
    words = RealWords.from_padded(padded, mask)
    order = torch.randperm(words.positions.numel(), generator=torch.Generator().manual_seed(0))
    shuffled = RealWords(words.values[order], words.positions[order], words.grid)
    assert torch.equal(shuffled.padded(), padded)
    assert torch.equal(shuffled.values_at(words.positions), words.values)  # another order: gathered
    assert shuffled.values_at(shuffled.positions) is shuffled.values  # its own: the values as they are
    assert shuffled.values_at(shuffled.positions.clone()) is shuffled.values  # equal positions, another tensor
    some = words.positions[[4, 0]]
    assert torch.equal(shuffled.values_at(some), padded.reshape(-1, 4)[some])


def test_padded_passes_gradients_to_the_real_words_only():
    values = torch.randn(4, 3, requires_grad=True)
    words = RealWords(values, torch.tensor([5, 0, 1, 3]), (2, 3))
    weights = torch.randn(2, 3, 3)
    (words.padded() * weights).sum().backward()
    assert torch.equal(values.grad, weights.reshape(6, 3)[[5, 0, 1, 3]])


def test_head_gradients_equal_the_padded_computation():
    """The token head computes C on [h_s ; h_p] of the real words alone (`real_word_features`): loss and every
    parameter's gradient equal those of C applied to the padded `last_hidden_state` at its real positions, with and
    without task rows."""
    no_dropout = {name: 0.0 for name in ("input_dropout", "char_dropout", "lstm_dropout", "expert_dropout",
                                         "predictor_dropout", "discriminator_dropout")}  # fmt: skip
    tiny_config = ManMoeConfig(**TINY, **no_dropout)
    model = build(tiny_config).train()  # training's code paths (recorded BiLSTMs, no distinct words)
    batch = random_batch(tiny_config, batch=4, lengths=[7, 3, 5, 6])
    for rows in (None, torch.tensor([True, False, True, True])):
        model.zero_grad()
        out = model(**batch, task_rows=rows)
        out.loss.backward()
        actual = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}

        model.zero_grad()
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "lang_ids")}
        base = model.manmoe(**inputs, task_rows=rows)
        keep = torch.ones(4, dtype=torch.bool) if rows is None else rows
        real = batch["attention_mask"][keep].bool()
        log_probs, gates = model.predictor.mixture(base.last_hidden_state[real])
        padded = torch.zeros(*real.shape, log_probs.shape[-1])
        padded[real] = log_probs
        labels, lang_ids = batch["labels"][keep], batch["lang_ids"][keep]
        private_gates = base.private_gate_logits
        loss = torch.zeros(())
        for k in lang_ids.unique().tolist():  # the objective: per language, NLL + weighted gate losses; summed
            rows = lang_ids == k
            loss = loss + torch.nn.functional.nll_loss(
                padded[rows].reshape(-1, padded.shape[-1]), labels[rows].reshape(-1)
            )
            if k < tiny_config.num_experts:
                words = real[rows]
                targets = torch.full((int(words.sum()),), k)
                loss = loss + tiny_config.private_gate_loss_weight * torch.nn.functional.cross_entropy(
                    private_gates[rows][words], targets
                )
                predictor_gates = torch.zeros(*real.shape, gates.shape[-1])
                predictor_gates[real] = gates
                loss = loss + tiny_config.predictor_gate_loss_weight * torch.nn.functional.cross_entropy(
                    predictor_gates[rows][words], targets
                )
        torch.testing.assert_close(out.loss, loss, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.logits, padded, rtol=0, atol=1e-6)
        loss.backward()
        expected = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
        assert actual.keys() == expected.keys() and len(actual) > 10
        for name in actual:
            torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
