"""Tests for podium.config: merging defaults, YAML files and overrides, and checking keys."""

import pytest
from omegaconf import DictConfig, OmegaConf

from podium.config import from_any, load_config, save_config
from podium.errors import PodiumError


def write_yaml(path, text):
    path.write_text(text)
    return path


def load_error(path=None, overrides=()):
    with pytest.raises(PodiumError) as error:
        load_config(path, overrides)
    return str(error.value)


# ---------------------------------------------------------------- unknown keys

def test_yaml_unknown_key_suggests(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "optim:\n  lrr: 0.1\n")

    message = load_error(path)

    assert "'optim.lrr'" in message
    assert "did you mean 'optim.lr'?" in message
    assert str(path) in message


def test_override_unknown_key_suggests():
    message = load_error(overrides=["optim.lrr=1"])

    assert "'optim.lrr'" in message
    assert "did you mean 'optim.lr'?" in message
    assert "command line" in message


def test_override_unknown_section_suggests():
    message = load_error(overrides=["optm.lr=1"])

    assert "did you mean 'optim'?" in message


def test_unknown_key_lists_valid_keys():
    message = load_error(overrides=["zzzzzz=1"])

    assert "'zzzzzz'" in message
    assert "valid keys here:" in message
    assert "optim" in message


# ---------------------------------------------------------------- malformed overrides

def test_override_without_equals():
    message = load_error(overrides=["optim.lr"])

    assert "invalid override 'optim.lr'" in message
    assert "key=value" in message


def test_override_scalar_for_section():
    message = load_error(overrides=["optim=3"])

    assert "'optim'" in message
    assert "must be a section" in message


def test_yaml_scalar_for_section(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "train: 5\n")

    message = load_error(path)

    assert "'train'" in message
    assert "must be a section" in message


# ---------------------------------------------------------------- name

def test_name_defaults_to_stem(tmp_path):
    path = write_yaml(tmp_path / "effnet_b3_fold.yaml", "optim:\n  lr: 0.01\n")

    assert load_config(path).name == "effnet_b3_fold"


def test_name_without_file():
    assert load_config(None).name == "default"


def test_name_in_yaml_wins(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "name: baseline\n")

    assert load_config(path).name == "baseline"


def test_name_override_wins(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "name: baseline\n")

    assert load_config(path, ["name=rerun"]).name == "rerun"


# ---------------------------------------------------------------- values

def test_override_float_exponent():
    config = load_config(None, ["optim.lr=1e-3"])

    assert isinstance(config.optim.lr, float)
    assert config.optim.lr == 0.001


def test_override_typed_values():
    config = load_config(None, ["train.epochs=3", "model.pretrained=true", "competition.group_column=null"])

    assert config.train.epochs == 3
    assert isinstance(config.train.epochs, int)
    assert config.model.pretrained is True
    assert config.competition.group_column is None


def test_override_list_value():
    config = load_config(None, ["competition.classes=[a,b]"])

    assert list(config.competition.classes) == ["a", "b"]


def test_override_beats_yaml(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "optim:\n  lr: 0.01\n  weight_decay: 0.1\n")

    config = load_config(path, ["optim.lr=0.5"])

    assert config.optim.lr == 0.5
    assert config.optim.weight_decay == 0.1


def test_yaml_keeps_other_defaults(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "optim:\n  lr: 0.01\n")

    config = load_config(path)

    assert config.optim.name == "adamw"
    assert config.train.epochs == 10


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "no_such_experiment.yaml"

    message = load_error(path)

    assert "config file not found" in message
    assert str(path) in message


# ---------------------------------------------------------------- from_any

def test_from_any_dict():
    config = from_any({"optim": {"lr": 0.25}, "train": {"epochs": 2}})

    assert config.optim.lr == 0.25
    assert config.train.epochs == 2
    assert config.optim.name == "adamw"


def test_from_any_dict_unknown_key():
    with pytest.raises(PodiumError) as error:
        from_any({"optim": {"lrr": 0.25}})

    assert "'optim.lrr'" in str(error.value)
    assert "did you mean 'optim.lr'?" in str(error.value)


def test_from_any_path(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "optim:\n  lr: 0.01\n")

    config = from_any(str(path), ["train.epochs=1"])

    assert config.name == "exp"
    assert config.optim.lr == 0.01
    assert config.train.epochs == 1


def test_from_any_loaded_config():
    loaded = load_config(None, ["optim.lr=0.3"])

    config = from_any(loaded)

    assert isinstance(config, DictConfig)
    assert config.optim.lr == 0.3


# ---------------------------------------------------------------- save_config

def test_save_config_round_trip(tmp_path):
    config = load_config(None, ["name=saved", "optim.lr=1e-4", "competition.classes=[a,b]"])

    path = save_config(config, tmp_path / "run")

    assert path == tmp_path / "run" / "config.yaml"
    assert OmegaConf.load(path) == config


def test_save_config_reloads(tmp_path):
    config = load_config(None, ["name=saved", "train.epochs=4"])

    path = save_config(config, tmp_path)

    assert load_config(path) == config


# ---------------------------------------------------------------- layering

def test_from_any_loaded_config_takes_overrides():
    loaded = load_config(None, ["optim.lr=0.5"])
    assert from_any(loaded, ["optim.lr=0.2"]).optim.lr == 0.2


def test_from_any_overrides_beat_dict():
    assert from_any({"optim": {"lr": 0.5}}, ["optim.lr=0.1"]).optim.lr == 0.1


def test_null_section_rejected():
    assert "must be a section of keys" in load_error(None, ["optim=null"])


def test_yaml_list_file_rejected(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", "- 1\n- 2\n")
    assert "must hold a mapping of keys" in load_error(path)
