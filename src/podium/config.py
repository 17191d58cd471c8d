"""Load an experiment config: configs/default.yaml, then the experiment's YAML, then dotted overrides."""

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, OmegaConf

from podium.errors import PodiumError

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> DictConfig:
    """Merge the defaults, the YAML file at `path` and `key=value` overrides into one config.

    Every key must exist in the defaults, so a typo fails here instead of being ignored.
    The experiment name defaults to the file's stem.
    """
    config = OmegaConf.load(DEFAULT_CONFIG)
    layers = []

    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PodiumError(f"config file not found: {path}. Pass an existing YAML file, e.g. CONFIG=configs/demo.yaml")
        layer = OmegaConf.load(path)
        if not isinstance(layer, DictConfig):
            raise PodiumError(f"config file {path} must hold a mapping of keys (like configs/demo.yaml), not a {type(layer).__name__}")
        layers.append((str(path), layer))

    overrides = list(overrides)
    for item in overrides:
        if "=" not in item:
            raise PodiumError(f"invalid override {item!r}: write it as key=value, e.g. optim.lr=1e-3")
    if overrides:
        layers.append(("the command line", OmegaConf.from_dotlist(overrides)))

    for source, layer in layers:
        check_known_keys(layer, config, source)
        config = OmegaConf.merge(config, layer)

    if config.name is None:
        config.name = path.stem if path is not None else "default"
    return config


def from_any(config: str | Path | Mapping | DictConfig, overrides: Iterable[str] = ()) -> DictConfig:
    """Accept a config path, a plain dict of overrides or a loaded config, as the Python API does.

    Dotted `overrides` apply last, over whatever `config` sets.
    """
    if isinstance(config, (str, Path)):
        return load_config(config, overrides)

    if isinstance(config, DictConfig):
        loaded = config
    else:
        loaded = load_config(None)
        layer = OmegaConf.create(dict(config))
        check_known_keys(layer, loaded, "the given dict")
        loaded = OmegaConf.merge(loaded, layer)

    overrides = list(overrides)
    if overrides:
        layer = OmegaConf.from_dotlist(overrides)
        check_known_keys(layer, loaded, "the overrides")
        loaded = OmegaConf.merge(loaded, layer)
    return loaded


def check_known_keys(layer: Any, defaults: Any, source: str, prefix: str = "") -> None:
    """Raise PodiumError for a key of `layer` that the defaults lack, naming the closest valid key."""
    if not isinstance(layer, DictConfig) or not isinstance(defaults, DictConfig):
        return

    for key in layer.keys():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            known = [f"{prefix}{name}" for name in defaults.keys()]
            close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys here: {', '.join(known)}"
            raise PodiumError(f"unknown config key {dotted!r} in {source}: {hint}")

        value, default = layer._get_node(key), defaults._get_node(key)
        if isinstance(default, DictConfig) and not isinstance(value, DictConfig):
            raise PodiumError(f"config key {dotted!r} in {source} must be a section of keys, not {value._value()!r}")
        check_known_keys(value, default, source, prefix=f"{dotted}.")


def to_plain(config: DictConfig) -> dict:
    """Return the resolved config as plain Python types (for checkpoints and JSON)."""
    return OmegaConf.to_container(config, resolve=True)


def experiment_dir(config: DictConfig) -> Path:
    return Path(config.output_dir) / config.name


def fold_dir(config: DictConfig, fold: int) -> Path:
    return experiment_dir(config) / f"fold{fold}"


def save_config(config: DictConfig, folder: Path) -> Path:
    """Write the resolved config as config.yaml in `folder`, so every run records what it ran."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    OmegaConf.save(config, path, resolve=True)
    return path
