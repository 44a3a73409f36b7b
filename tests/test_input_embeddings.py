"""Input components: a third input plugs in through the registry alone, without touching the extractors, the
trainer or the cards; the one place that picks a component is `build_input_embeddings`."""

from __future__ import annotations

import pytest
import torch
import transformers
from torch import nn

from modeling_manmoe import ManMoeConfig, ManMoeConfigError, ManMoeForTokenClassification
from modeling_manmoe.input_embeddings import (
    INPUT_EMBEDDINGS,
    InputEmbeddings,
    build_input_embeddings,
    describe_input,
    register_input_embeddings,
)
from modeling_manmoe.run.model_card import build_model_card
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from tests.conftest import TINY, random_batch
from tests.synthetic import synthetic_task
from tests.test_model_card import ner_results, write_run


class ToyInputs(InputEmbeddings):
    """A trainable word embedding of 5 dimensions plus each word's id parity: two blocks."""

    input_mode = "toy"

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.word_vocab_size, 5)

    @property
    def output_size(self) -> int:
        return 5 + 1

    def forward(self, attention_mask, input_ids=None, **unused):
        return [self.embedding(input_ids), (input_ids % 2).unsqueeze(-1).float()]

    @classmethod
    def describe(cls, config: dict, short: bool = False) -> str:
        return "toy" if short else "a toy embedding and the parity of word ids"

    @classmethod
    def limitations(cls, config: dict) -> list[str]:
        return ["The toy input knows nothing."]


@pytest.fixture
def toy():
    register_input_embeddings(ToyInputs)
    yield ToyInputs
    INPUT_EMBEDDINGS.pop("toy")


def test_a_registered_component_is_built_from_the_config_and_trains(toy):
    model = ManMoeForTokenClassification(ManMoeConfig(**TINY, input_mode="toy"))
    assert type(model.manmoe.inputs) is ToyInputs and isinstance(build_input_embeddings(model.config), ToyInputs)
    assert model.manmoe.shared_extractor.encoder.lstm.input_size == 6
    batch = random_batch(model.config)
    out = model(**batch)
    out.loss.backward()
    assert out.logits.shape == (3, 7, TINY["num_labels"]) and model.manmoe.inputs.embedding.weight.grad.abs().sum() > 0


def test_a_registered_component_saves_loads_and_describes_itself(toy, tmp_path):
    torch.manual_seed(0)
    model = ManMoeForTokenClassification(ManMoeConfig(**TINY, input_mode="toy")).eval()
    model.save_pretrained(tmp_path)
    loaded = ManMoeForTokenClassification.from_pretrained(tmp_path).eval()
    batch = random_batch(model.config)
    batch.pop("labels")
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    config = model.config.to_dict()
    assert describe_input(config) == "a toy embedding and the parity of word ids"
    assert describe_input(config, short=True) == "toy"
    results = ner_results()
    results["config"] = {**results["config"], **config}
    card = str(build_model_card(write_run(tmp_path / "run", results)))
    assert "input: a toy embedding and the parity of word ids" in card and "- The toy input knows nothing." in card


def test_the_trainer_trains_a_model_with_a_new_component(toy, tmp_path):
    transformers.logging.set_verbosity_error()
    config, tokenizer, _, data = synthetic_task()
    config = ManMoeConfig(**{**config.to_dict(), "input_mode": "toy"})
    model = ManMoeForTokenClassification(config)
    before = model.manmoe.inputs.embedding.weight.detach().clone()
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                                   save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True)  # fmt: skip
    trainer = ManMoeTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    assert not torch.equal(model.manmoe.inputs.embedding.weight, before)


def test_an_unknown_component_names_the_field_and_the_registered_ones():
    with pytest.raises(
        ManMoeConfigError, match=r"'toy' is not a registered input component; registered: \['encoder', 'word_vectors'\]"
    ):
        ManMoeForTokenClassification(ManMoeConfig(**TINY, input_mode="toy"))
