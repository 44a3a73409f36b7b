"""A small synthetic multilingual tagging task where languages are easy to tell apart.

Every language has its own words for the same concepts. A word's vector = the concept's vector + a strong
language signature, so a discriminator reading raw inputs recognises the language at once, and a tag depends only
on the concept (tag = concept % num_labels, as BIO-free single-token entities).
"""

from __future__ import annotations

import datasets
import torch

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification, ManMoeTokenizer

LABELS = ["O", "B-PER", "B-LOC"]


def synthetic_task(sentences_per_language: int = 48, concepts: int = 24, dim: int = 16, seed: int = 0,
                   languages=("en", "de", "es", "nl"), **config_overrides):  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    concept_vectors = torch.randn(concepts, dim, generator=generator)
    vocabularies, rows = {}, [torch.zeros(1, dim), torch.randn(1, dim, generator=generator)]
    for language in languages:
        signature = torch.randn(1, dim, generator=generator)
        vocabularies[language] = [f"{language}{i}" for i in range(concepts)]
        rows.append(concept_vectors + signature)
    table = torch.nn.functional.normalize(torch.cat(rows), dim=-1)
    table[0] = 0
    tokenizer = ManMoeTokenizer(
        vocabularies=vocabularies, characters=list("endsl0123456789"), languages=list(languages)
    )
    data = {}
    for language in languages:
        tokens, tags = [], []
        for _ in range(sentences_per_language):
            length = int(torch.randint(3, 9, (1,), generator=generator))
            ids = torch.randint(0, concepts, (length,), generator=generator).tolist()
            tokens.append([f"{language}{i}" for i in ids])
            tags.append([i % len(LABELS) for i in ids])
        features = datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=LABELS)),
            }  # fmt: skip
        )
        data[language] = datasets.Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features=features)
    settings = dict(
        source_languages=list(languages[:-1]),
        unlabeled_languages=[languages[-1]],
        word_vocab_size=table.shape[0],
        word_embedding_dim=dim,
        use_char_cnn=False,
        shared_hidden_size=16,
        private_hidden_size=16,
        predictor_hidden_size=16,
        discriminator_num_filters=8,
        discriminator_hidden_size=16,
        input_dropout=0.1,
        lstm_dropout=0.1,
        expert_dropout=0.1,
        predictor_dropout=0.1,
        discriminator_dropout=0.1,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    config = ManMoeConfig(**{**settings, **config_overrides})
    return config, tokenizer, table, data


def synthetic_model(config, table, seed: int = 0):
    torch.manual_seed(seed)
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
    return model
