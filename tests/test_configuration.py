import pytest

from modeling_manmoe import ManMoeConfig, ManMoeConfigError


def test_defaults_are_the_papers_conll_values():
    config = ManMoeConfig()
    assert (config.shared_hidden_size, config.private_hidden_size, config.predictor_hidden_size) == (200, 200, 400)
    assert (config.n_critic, config.adversarial_lambda) == (1, 0.002)
    assert config.private_gate_loss_weight == config.predictor_gate_loss_weight == 0.01
    assert (config.char_kernel_sizes, config.char_num_filters, config.char_hidden_size) == ([3, 4, 5], 200, 128)
    assert config.discriminator_kernel_sizes == [3, 4, 5] and config.detach_gates
    assert config.input_dropout == config.lstm_dropout == config.expert_dropout == 0.5
    assert config.all_languages == ["en", "de", "es", "nl"] and config.num_experts == 3
    assert config.input_mode == "word_vectors" and config.kernels == "fast"


def test_the_input_component_gives_the_input_size():
    from modeling_manmoe import ManMoeModel

    assert ManMoeModel(ManMoeConfig()).inputs.output_size == 300 + 128


def test_an_encoder_config_means_the_encoder_input():
    config = ManMoeConfig(encoder_config={"model_type": "bert", "hidden_size": 8})
    assert config.input_mode == "encoder"


def test_validation_runs_once_per_construction(monkeypatch):
    calls = []
    check = ManMoeConfig.check_fields
    monkeypatch.setattr(ManMoeConfig, "check_fields", lambda self: calls.append(1) or check(self))
    ManMoeConfig()
    assert len(calls) == 1


def test_a_retired_field_of_an_older_folder_is_dropped(tmp_path):
    """Folders saved with `char_cnn_implementation` (retired: the CharCNN computes the same function) still load."""
    import json

    ManMoeConfig().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "char_cnn_implementation": "matmul"}))
    loaded = ManMoeConfig.from_pretrained(tmp_path)
    assert not hasattr(loaded, "char_cnn_implementation") and "char_cnn_implementation" not in loaded.to_dict()


def test_an_unregistered_input_component_is_refused_when_the_model_is_built():
    from modeling_manmoe import ManMoeForTokenClassification

    with pytest.raises(ManMoeConfigError, match=r"ManMoeConfig.input_mode: 'bert' is not a registered input component"):
        ManMoeForTokenClassification(ManMoeConfig(input_mode="bert"))


def test_round_trip(tmp_path):
    config = ManMoeConfig(source_languages=["en", "de"], unlabeled_languages=["nl"], use_predictor_moe=False)
    config.save_pretrained(tmp_path)
    loaded = ManMoeConfig.from_pretrained(tmp_path)
    assert loaded.source_languages == ["en", "de"] and loaded.use_predictor_moe is False


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        (dict(source_languages=[]), "source_languages", "at least one"),
        (dict(source_languages=["en", "nl"]), "unlabeled_languages", "also listed"),
        (dict(source_languages=["en", "en"]), "source_languages", "duplicate"),
        (dict(unlabeled_languages=["nl", "nl"]), "unlabeled_languages", "duplicate"),
        (dict(source_languages=["en", ""]), "source_languages", "non-empty"),
        (dict(input_mode=""), "input_mode", "must name an input component"),
        (dict(input_mode="encoder"), "encoder_config", "hidden_size"),
        (
            dict(input_mode="encoder", encoder_config={"model_type": "bert", "hidden_size": 8}, encoder_pooling="max"),
            "encoder_pooling",
            "not one of",
        ),
        (dict(shared_hidden_size=201), "shared_hidden_size", "even"),
        (dict(private_hidden_size=0), "private_hidden_size", "even"),
        (dict(predictor_hidden_size=0), "predictor_hidden_size", "positive"),
        (dict(word_vocab_size=1), "word_vocab_size", ">= 2"),
        (dict(char_vocab_size=1), "char_vocab_size", ">= 2"),
        (dict(char_kernel_sizes=[]), "char_kernel_sizes", "non-empty"),
        (dict(discriminator_kernel_sizes=[3, 0]), "discriminator_kernel_sizes", "positive"),
        (dict(input_dropout=1.0), "input_dropout", "[0, 1)"),
        (dict(adversarial_lambda=-0.1), "adversarial_lambda", ">= 0"),
        (dict(private_gate_loss_weight=-1.0), "private_gate_loss_weight", ">= 0"),
        (dict(n_critic=0), "n_critic", "positive"),
        (dict(source_languages=["en"], unlabeled_languages=[]), "use_adversary", "two languages"),
        (dict(id2label={0: "O"}), "id2label", "two labels"),
    ],
)
def test_invalid_combinations_name_the_field(kwargs, field, words):
    with pytest.raises(ValueError) as error:
        ManMoeConfig(**kwargs)
    assert isinstance(error.value, ManMoeConfigError)
    assert f"ManMoeConfig.{field}" in str(error.value) and words in str(error.value)


def test_single_source_without_adversary_is_valid():
    config = ManMoeConfig(source_languages=["en"], unlabeled_languages=[], use_adversary=False)
    assert config.num_experts == 1


def test_language_id_unknown_language():
    from modeling_manmoe import LanguageError

    config = ManMoeConfig()
    assert config.language_id("nl") == 3
    with pytest.raises(LanguageError, match="'fr'"):
        config.language_id("fr")


def test_few_shot_sizes_are_checked():
    from modeling_manmoe.errors import ManMoeConfigError

    assert ManMoeConfig(few_shot_sizes={"nl": 100}).few_shot_sizes == {"nl": 100}
    with pytest.raises(ManMoeConfigError, match=r"few_shot_sizes: 'fr' is not one of unlabeled_languages \['nl'\]"):
        ManMoeConfig(few_shot_sizes={"fr": 3})
    with pytest.raises(ManMoeConfigError, match=r"few_shot_sizes: 'nl': expected a positive number of labeled"):
        ManMoeConfig(few_shot_sizes={"nl": 0})
