"""`ManMoeTokenClassificationPipeline`: the `token-classification` pipeline for MAN-MoE's word-level tokenizer.

A saved `ManMoeForTokenClassification` folder names this class in its config (`custom_pipelines`) and holds this file,
so `pipeline("token-classification", model=FOLDER, trust_remote_code=True)` tags raw text: the text is split into
words with their character spans (`ManMoeTokenizer.words_with_offsets`), each word is one token, and entities carry
the words as written and their `start`/`end` in the text. Words are never split into sub-words, so the `first`,
`average` and `max` aggregation strategies give the same entities as `simple`.

    >>> tagger = pipeline("token-classification", model=FOLDER, trust_remote_code=True, aggregation_strategy="simple")
    >>> tagger("Angela Merkel besuchte Paris .", language="de")
"""

from __future__ import annotations

import torch
from transformers import TokenClassificationPipeline
from transformers.pipelines.token_classification import AggregationStrategy

WORD_LEVEL_STRATEGIES = (AggregationStrategy.FIRST, AggregationStrategy.AVERAGE, AggregationStrategy.MAX)


class ManMoeTokenClassificationPipeline(TokenClassificationPipeline):
    """`TokenClassificationPipeline` with one token per word. Extra call argument: `language` (a code of the
    tokenizer's languages; default: the tokenizer's default language, the target of a zero-shot run)."""

    def _sanitize_parameters(self, language: str | None = None, aggregation_strategy=None, **kwargs):
        if isinstance(aggregation_strategy, str):
            aggregation_strategy = AggregationStrategy[aggregation_strategy.upper()]
        if aggregation_strategy in WORD_LEVEL_STRATEGIES:
            aggregation_strategy = AggregationStrategy.SIMPLE  # a token is a whole word: nothing to merge
        preprocess, forward, postprocess = super()._sanitize_parameters(
            aggregation_strategy=aggregation_strategy, **kwargs
        )
        preprocess["language"] = language
        return preprocess, forward, postprocess

    def preprocess(self, sentence, offset_mapping=None, language: str | None = None, **preprocess_params):
        if not isinstance(sentence, str):
            raise ValueError(f"the token-classification pipeline takes raw text (a string), got {type(sentence)}")
        spans = self.tokenizer.words_with_offsets(sentence, language)
        if not spans:
            raise ValueError(f"no words in the text {sentence!r}")
        inputs = self.tokenizer([[word for word, _, _ in spans]], language=language, is_split_into_words=True,
                                return_tensors="pt")  # fmt: skip
        inputs = dict(inputs)
        inputs["special_tokens_mask"] = torch.zeros_like(inputs["input_ids"])
        inputs["offset_mapping"] = torch.tensor([[(start, end) for _, start, end in spans]])
        yield {**inputs, "sentence": sentence, "is_last": True}

    def gather_pre_entities(self, sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                            aggregation_strategy, word_ids=None, word_to_chars_map=None):  # fmt: skip
        """As the parent's, with no word taken for a sub-word (one token is one whole word)."""
        entities = super().gather_pre_entities(sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                                               aggregation_strategy, word_ids, word_to_chars_map)  # fmt: skip
        for entity in entities:
            entity["is_subword"] = False
        return entities

    def postprocess(self, all_outputs, aggregation_strategy=AggregationStrategy.NONE, ignore_labels=None):
        """Each entity's `word` is its span of the text as written (an entity of several words included)."""
        entities = super().postprocess(all_outputs, aggregation_strategy, ignore_labels)
        sentence = all_outputs[0]["sentence"]
        for entity in entities:
            entity["word"] = sentence[entity["start"] : entity["end"]]
        return entities


__all__ = ["ManMoeTokenClassificationPipeline"]
