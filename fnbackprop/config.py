"""Run configurations: TOML files with three sections, checked before anything runs.

    [network]
    sizes = [784, 30, 10]
    activation = "sigmoid"        # one name, or one per layer after the input
    cost = "quadratic"
    init = "normal"               # scaled | network3 | zeros, or one per layer
    [[network.override]]          # optional, repeatable: one neuron with its own activation
    layer = 2                     # the book's numbering: layer 2 is the first hidden layer
    neuron = 5                    # neurons count from 0 within their layer
    activation = "tanh"

    [training]
    epochs = 30
    mini_batch_size = 10
    eta = 3.0
    lmbda = 0.0                   # L2 on weights only, λ/n · w: w → (1 − ηλ/n) w − … (eq. 93)
    l1 = 0.0                      # L1 on weights only, λ₁/n · sgn(w) (eqs. 95–97)
    dropout = 0.0                 # probability of dropping a hidden neuron, 0 ≤ p < 1
    early_stopping = 0            # stop after n epochs without a better validation accuracy
    schedule = "constant"         # halve_on_plateau | cosine_decay | exponential_decay | …
    schedule_args = {}            # the schedule's options, e.g. { patience = 10 }
    monitor_training_cost = false # score the training data too (network2's monitor_* flags)
    monitor_training_accuracy = false
    monitor_layer_speed = false   # chapter 5: ‖∂C/∂b^l‖ of every layer, on the first 1,000 examples
    optimizer = "sgd"             # sgd | momentum | adam
    momentum = 0.9
    gradient = "backprop"         # backprop | backprop_batch | autodiff | backprop_vjp
    seed = 0
    dtype = "float32"
    devices = 1                   # split each mini-batch across this many devices (must divide it)

    [data]
    dataset = "mnist"             # mnist | mnist_pkl | fashion_mnist
    dir = ""                      # "" means --data-dir, $FNBACKPROP_DATA, or the user cache
    train_size = 50000            # use the first n training images
    expand = false                # chapter 6: each of them and its 4 one-pixel shifts (5n)

**Layer stacks** (chapter 6): instead of `sizes` and `activation`, repeatable `[[network.layer]]`
tables, first to last, derive them:

    [[network.layer]]
    kind = "conv_pool"            # dense | conv_pool | conv | max_pool
    filters = 20
    kernel = 5
    pool = 2
    activation = "relu"
    dropout = 0.0                 # probability of dropping each of this layer's outputs
    [[network.layer]]
    kind = "dense"
    size = 10
    activation = "softmax"

A layer's `dropout` is the chapter-3 dropout of that hidden layer alone; `training.dropout`
drops every hidden layer's neurons alike. Give one or the other.

Every key has a default; a file need only say what differs. An unknown key, a value of the wrong
type or an unknown name raises `ConfigError` naming the key and the valid choices, and where the
value came from: the file, or the `--set KEY=VALUE` item that gave it. Every named choice
(activation, cost, init, optimizer, gradient, schedule, dataset) is looked up in its registry
(`fnbackprop.registry`), so a registered name or an import path `"package.module:Name"` works
wherever a built-in name does, and the run's config keeps it as written.

**Sweeps.** A `[sweep]` table names any key by its dotted path, with the list of values to try:

    [sweep]
    "network.activation" = ["sigmoid", "tanh", "relu"]
    "network.sizes" = [[784, 30, 10], [784, 100, 10]]
    "training.seed" = [0, 1, 2]

(TOML's bare dotted keys, `network.activation = [...]` under `[sweep]`, mean the same.) On the
command line: `--set 'sweep.network.activation=["sigmoid","tanh"]'`. A list where a number is
expected (`eta = [0.1, 0.5, 3.0]` in its section, or `--set 'training.seed=[0,1,2]'`) is a
shorthand for the same. `load_sweep` returns one `Config` per point of the product of all the
lists, each named by its values (`activation=tanh,seed=2`; `sizes=[784,100,10]`). The value in
the key's own section (or its default) is what the sweep replaces. `load` refuses a sweep,
saying so.
"""

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import tomli_w

from . import activations, costs
from .data import DATASETS
from .errors import ConfigError, FnbackpropError
from .network import INITS, Network
from .optimizers import OPTIMIZERS
from .registry import Registry, did_you_mean
from .schedules import SCHEDULES, make_schedule
from .sharding import check_divisible
from .training import GRADIENTS

__all__ = [
    "DTYPES",
    "SWEEP",
    "Config",
    "Sweep",
    "apply_overrides",
    "build_network",
    "dropout",
    "dumps",
    "expand",
    "load",
    "load_sweep",
    "lookup",
    "parse",
    "run_name",
]

DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class Override:
    """One neuron with its own activation (the single-modified-neuron exercise)."""

    layer: int
    neuron: int
    activation: str


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer of a stack, `[[network.layer]]`: for networks beyond the book's dense one.

    `kind` is one of `LAYER_KINDS`: "dense" (`size` neurons), "conv_pool" (network3's
    ConvPoolLayer: `filters` maps from a `kernel` × `kernel` correlation, then `pool` × `pool`
    max-pooling, then the bias and σ), "conv" (a correlation alone) or "max_pool". `init` is the
    layer's own init scheme (default: `network.init`, "network3" for convolutional layers when
    that is a dense-only scheme). `dropout` is the probability of dropping each of the layer's
    outputs in training (chapter 3's dropout, this layer alone; not the output layer).
    """

    kind: str
    size: int = 0
    filters: int = 0
    kernel: int = 5
    pool: int = 2
    activation: str = "sigmoid"
    init: str = ""
    dropout: float = 0.0


#: The kinds of `[[network.layer]]` and the keys each one uses (besides kind).
LAYER_KINDS = {
    "dense": ("size", "activation", "init", "dropout"),
    "conv_pool": ("filters", "kernel", "pool", "activation", "init", "dropout"),
    "conv": ("filters", "kernel", "activation", "init", "dropout"),
    "max_pool": ("pool", "dropout"),
}


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    sizes: tuple[int, ...] = (784, 30, 10)
    activation: str | tuple[str, ...] = "sigmoid"
    cost: str = "quadratic"
    init: str | tuple[str, ...] = "normal"
    override: tuple[Override, ...] = ()
    layer: tuple[LayerSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 30
    mini_batch_size: int = 10
    eta: float = 3.0
    lmbda: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0
    early_stopping: int = 0
    schedule: str = "constant"
    schedule_args: "Table" = ()
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    monitor_layer_speed: bool = False
    optimizer: str = "sgd"
    momentum: float = 0.9
    gradient: str = "backprop"
    seed: int = 0
    dtype: str = "float32"
    devices: int = 1


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    dir: str = ""
    train_size: int = 50_000
    expand: bool = False


@dataclasses.dataclass(frozen=True)
class Config:
    network: NetworkConfig = NetworkConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()


_SECTIONS = {"network": NetworkConfig, "training": TrainingConfig, "data": DataConfig}


class Sweep(NamedTuple):
    """The runs of a sweep: `axes` maps each swept key ("training.eta") to its values, and `runs`
    each run's name ("eta=0.1,seed=2", "" for a single run) to its `Config`."""

    axes: dict[str, list]
    runs: dict[str, Config]


# -- reading ---------------------------------------------------------------------------------


def load(path: "str | Path", overrides: Iterable[str] = ()) -> Config:
    """Read a TOML config, apply `--set key=value` overrides, and check everything.

    A list where a number is expected makes a sweep, which `load` refuses (use `load_sweep`).
    """
    sweep = load_sweep(path, overrides)
    if sweep.axes:
        key = next(iter(sweep.axes))
        sources = _override_sources(overrides)
        where = _source(str(path), sources, key, f"{SWEEP}.{key}")
        raise ConfigError(
            f"{where}: {key} is swept, {sweep.axes[key]}: that makes a sweep, which "
            "`fnbackprop train` runs (or fnbackprop.sweeps.run_sweep); here give one value"
        )
    return next(iter(sweep.runs.values()))


def load_sweep(path: "str | Path", overrides: Iterable[str] = ()) -> Sweep:
    """Read a TOML config with overrides; every key of its `[sweep]` table, and every list where
    a number is expected, is a swept axis. Returns the `Sweep` of every combination (a single run
    has no axes and one run "")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    overrides = list(overrides)
    merged = apply_overrides(raw, overrides)
    return expand(merged, source=str(path), sources=_override_sources(overrides))


def _override_sources(overrides: Iterable[str]) -> dict[str, str]:
    """`section.key` → the `--set` item that set it last (`sweep.section.key` for a sweep's,
    quoted or not)."""
    sources = {}
    for item in overrides:
        key, sep, _ = item.partition("=")
        if sep:
            section, _, name = key.strip().partition(".")
            if section == SWEEP:
                key = f"{SWEEP}.{_unquoted(name)}"
            sources[key.strip()] = f"--set {item.strip()}"
    return sources


def _unquoted(name: str) -> str:
    """A TOML key as written on the command line, its quotes taken off: '"network.cost"'."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        return name[1:-1]
    return name


def _source(default: str, sources: Mapping[str, str] | None, *keys: str) -> str:
    """Where the value of one of `keys` came from: the first `--set` item among them, or the
    file (`default`)."""
    for key in keys:
        if sources and key in sources:
            return sources[key]
    return default


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """`raw` with each `section.key=value` applied; the value is read as TOML, else as a string."""
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. training.eta=0.5")
        if section == SWEEP:
            name = _unquoted(name)  # sweep.network.cost or sweep."network.cost": one key
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word: tanh, mnist
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {item.strip()}: {section} is not a section")
        target[name] = value
    return merged


#: The table of swept keys: `[sweep]`, `"section.key" = [values to try]`.
SWEEP = "sweep"


def expand(
    raw: Mapping[str, Any], source: str = "config", sources: Mapping[str, str] | None = None
) -> Sweep:
    """Every combination of the values listed in `[sweep]` and of the lists found where numbers
    are expected, each parsed and checked.

    The axes keep the order they appear in (the lists in the sections first); a run's name lists
    its values as `key=value` joined by commas, the key without its section when that is
    unambiguous.
    """
    raw = dict(raw)
    table = raw.pop(SWEEP, {})
    axes: dict[str, list] = {}
    for section, cls in _SECTIONS.items():
        section_table = raw.get(section)
        if not isinstance(section_table, Mapping):
            continue
        numeric = {f.name for f in dataclasses.fields(cls) if f.type in (int, float)}
        for key, value in section_table.items():
            if key in numeric and isinstance(value, list):
                where = _source(source, sources, f"{section}.{key}")
                axes[f"{section}.{key}"] = _axis(f"{section}.{key}", value, where)
    point_sources = dict(sources or {})
    for key, value in _swept(table, source, sources).items():
        where = _source(source, sources, f"{SWEEP}.{key}")
        if key in axes:
            raise ConfigError(
                f"{where}: {key} is swept twice, in [{SWEEP}] and as a list in "
                f"[{key.split('.')[0]}]: give its values in one place"
            )
        axes[key] = _axis(key, value, where)
        if where != source:
            point_sources[key] = where  # an error in one of its values names the --set item
    runs: dict[str, Config] = {}
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values, strict=True))
        one = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
        for key, value in point.items():
            section, name = key.split(".")
            if not isinstance(one.get(section, {}), Mapping):
                raise ConfigError(f"{source}: {section} must be a section ([{section}])")
            one.setdefault(section, {})[name] = value
        try:
            config = parse(one, source=source, sources=point_sources)
        except ConfigError as err:
            if not point:
                raise
            raise ConfigError(f"{err} (in the sweep's run {run_name(point)})") from None
        # named by the values as read (eta = 1 and 1.0 are one run, named eta=1.0)
        name = run_name({k: lookup(config, k) for k in point})
        if name in runs:
            raise ConfigError(f"{source}: two runs of the sweep are the same run, {name}")
        runs[name] = config
    return Sweep(axes, runs)


def _axis(key: str, values: Any, where: str) -> list:
    """The values of one swept key: a list, not empty, no value twice."""
    if not isinstance(values, list):
        raise ConfigError(
            f"{where}: [{SWEEP}] {key} must be a list of the values to try, got {values!r}"
            + (' (quote names: ["sigmoid", "tanh"])' if isinstance(values, str) else "")
        )
    if not values:
        raise ConfigError(f"{where}: {key} is an empty list: nothing to sweep")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{where}: {key} lists a value twice: {values}")
    return list(values)


def _swept(table: Any, source: str, sources: Mapping[str, str] | None) -> dict[str, Any]:
    """The `[sweep]` table as `section.key` → values, each key checked to exist. TOML's dotted
    keys nest (`network.cost = [...]` is `{"network": {"cost": [...]}}`); quoted ones do not."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: {SWEEP} must be a table ([{SWEEP}])")
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and prefix.count(".") < 1:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = value

    walk("", table)
    valid = [f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in dataclasses.fields(cls)]
    for key in flat:
        if key not in valid:
            where = _source(source, sources, f"{SWEEP}.{key}")
            raise ConfigError(
                f"{where}: unknown key {key} in [{SWEEP}]{did_you_mean(key, valid)}; a swept "
                f"key is section.key, one of: {', '.join(valid)}"
            )
    return flat


def lookup(config: Config, key: str) -> Any:
    """The value of `key` ("training.eta", "section.name") in `config`."""
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def run_name(values: Mapping[str, Any]) -> str:
    """The name of a sweep's run (or of a group of runs) from its swept values: `key=value`
    joined by commas, the key without its section where that is unambiguous (`eta=0.1,seed=2`)."""
    short = _short_names(list(values))
    return ",".join(f"{short[k]}={_show(v)}" for k, v in values.items())


def _short_names(keys: list[str]) -> dict[str, str]:
    names = [k.split(".", 1)[1] for k in keys]
    return {k: n if names.count(n) == 1 else k for k, n in zip(keys, names, strict=True)}


def _show(value: Any) -> str:
    """A swept value as it appears in a run's name (a folder name: no spaces, no '/')."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Override):
        return f"L{value.layer}N{value.neuron}={value.activation}"
    if isinstance(value, Mapping):
        value = tuple(value.items())
    if isinstance(value, tuple | list):
        if value and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                         for p in value):  # fmt: skip
            return "{" + ",".join(f"{k}={_show(v)}" for k, v in value) + "}"  # schedule_args
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value).replace("/", "_")


def parse(
    raw: Mapping[str, Any], source: str = "config", sources: Mapping[str, str] | None = None
) -> Config:
    """Check a config given as nested mappings (as read from TOML) and build a `Config`.

    `sources` maps `section.key` to the `--set` item that gave its value, so that an error in it
    names that item rather than `source` (the file).
    """
    if SWEEP in raw:
        raise ConfigError(
            f"{source}: [{SWEEP}] makes a sweep: read it with fnbackprop.config.load_sweep (or "
            "expand), or train it with `fnbackprop train`"
        )
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        section = sorted(unknown)[0]
        where = next((v for k, v in (sources or {}).items() if k.split(".")[0] == section), source)
        valid = (*_SECTIONS, SWEEP)
        raise ConfigError(
            f"{where}: unknown section [{section}]{did_you_mean(section, valid)}; "
            f"valid sections: {', '.join(valid)}"
        )
    sections = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: {name} must be a section ([{name}])")
        sections[name] = _parse_section(name, cls, table, source, sources)
    config = Config(**sections)
    if config.network.layer:
        config = _from_layers(config, raw.get("network", {}), source, sources)
    _check_choices(config, source, sources)
    return config


def _from_layers(config: Config, given: Mapping[str, Any], source: str, sources=None) -> Config:
    """A config of `[[network.layer]]` tables with `network.sizes`, `activation` and `init`
    filled in from its layers (each may be given too, if it says the same)."""
    n = config.network
    where = _source(source, sources, "network.layer")
    if n.override:
        raise ConfigError(
            f"{where}: [[network.override]] is for the book's dense network; with "
            "[[network.layer]] give a layer its own activation instead"
        )
    if not isinstance(n.init, str) and len(n.init) != len(n.layer):
        raise ConfigError(
            f"{_source(source, sources, 'network.init')}: network.init lists {len(n.init)} "
            f"schemes for {len(n.layer)} [[network.layer]] tables: give one name (the default "
            "of every layer), or one per layer"
        )
    try:
        layers, schemes = layer_stack(config)
    except FnbackpropError as err:
        raise ConfigError(f"{where}: {err}") from None
    derived = {
        "sizes": (layers[0].in_size, *(layer.out_size for layer in layers)),
        "activation": tuple(layer.sigma.name for layer in layers),
        "init": schemes,
    }
    for key, value in derived.items():
        one_default = key == "init" and isinstance(n.init, str)  # every layer's, not a list
        if key in given and getattr(n, key) != value and not one_default:
            shown = list(value) if key == "sizes" else value
            raise ConfigError(
                f"{_source(source, sources, f'network.{key}')}: network.{key} = "
                f"{_show(getattr(n, key))} does not match the [[network.layer]] tables, which "
                f"give {_show(shown)}: leave it out"
            )
    return dataclasses.replace(config, network=dataclasses.replace(n, **derived))


def _check_layer_dropout(config: Config, source: str, sources=None) -> None:
    layers = config.network.layer
    where = _source(source, sources, "network.layer")
    for i, spec in enumerate(layers, start=2):
        if not 0 <= spec.dropout < 1:
            raise ConfigError(
                f"{where}: layer {i}'s dropout is the probability of dropping each of its "
                f"outputs, 0 ≤ p < 1, got {spec.dropout}"
            )
    if layers and layers[-1].dropout:
        raise ConfigError(
            f"{where}: the output layer's dropout must be 0: dropout drops hidden neurons (to "
            "drop a layer's inputs, as network3's p_dropout does, give the layer below it one)"
        )
    if config.training.dropout and any(spec.dropout for spec in layers):
        where = _source(source, sources, "training.dropout", "network.layer")
        raise ConfigError(
            f"{where}: training.dropout drops every hidden layer alike and [[network.layer]] "
            "tables give their own dropout: give one or the other"
        )


def dropout(config: Config) -> "float | tuple[float, ...]":
    """The run's dropout probability: one p for every hidden layer (`training.dropout`), or,
    when `[[network.layer]]` tables give their own, one per hidden layer (0 where none)."""
    if any(spec.dropout for spec in config.network.layer):
        return tuple(spec.dropout for spec in config.network.layer[:-1])
    return config.training.dropout


def layer_stack(config: Config) -> tuple[tuple, tuple[str, ...]]:
    """The layers `[[network.layer]]` describes, the input an image of the data set, and each
    one's init scheme."""
    from . import conv
    from .layers import Dense

    n = config.network
    shape: tuple[int, ...] = (1, *DATASETS.get(config.data.dataset).image_shape)
    layers, schemes = [], []
    for i, spec in enumerate(n.layer):
        sigma = activations.get(spec.activation)
        if spec.kind == "dense":
            layer = Dense(math.prod(shape), _positive_size(spec.size, "size"), sigma)
        elif spec.kind == "conv_pool":  # the conv layers check their own filters
            layer = conv.ConvPool(shape, spec.filters, spec.kernel, spec.pool, sigma)
        elif spec.kind == "conv":
            layer = conv.Conv2D(shape, spec.filters, spec.kernel, sigma)
        else:
            layer = conv.MaxPool(shape, spec.pool)
        layers.append(layer)
        schemes.append(spec.init or (n.init if isinstance(n.init, str) else n.init[i]))
        shape = layer.out_shape
    return tuple(layers), tuple(schemes)


def _positive_size(value: int, key: str) -> int:
    if value < 1:
        raise FnbackpropError(f"{key} must be at least 1, got {value}")
    return value


def _parse_section(section: str, cls: type, table: Mapping[str, Any], source: str, sources=None):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = _source(source, sources, f"{section}.{key}")
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key {section}.{key}{did_you_mean(key, fields)}; "
                f"valid keys in [{section}]: {', '.join(fields)}"
            )
        values[key] = _coerce(f"{section}.{key}", fields[key].type, value, where)
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    if missing := [n for n in required if n not in values]:
        raise ConfigError(
            f"{source}: [[{section}]] needs {', '.join(required)}; missing: {', '.join(missing)}"
        )
    return cls(**values)


def _coerce(key: str, kind: Any, value: Any, source: str):
    """`value` checked against the field type `kind`, converted where TOML is looser."""
    for rule_kind, rule in _RULES:
        if kind == rule_kind:
            if isinstance(value, list) and kind in (int, float):
                raise ConfigError(
                    f"{source}: {key} is a list, {value}: a list where a number is expected "
                    "makes a sweep (fnbackprop.config.load_sweep); here give one number"
                )
            try:
                return rule(key, value, source)
            except _Wrong as wrong:
                hint = ""
                if isinstance(value, list) and kind in (str, tuple[int, ...]):  # several to try?
                    hint = (
                        f'; to try several, list them in [{SWEEP}]: "{key}" = [...] (or '
                        f"--set '{SWEEP}.{key}=[...]')"
                    )
                raise ConfigError(f"{source}: {key} must be {wrong}, got {value!r}{hint}") from None
    raise AssertionError(f"no rule for {kind}")  # pragma: no cover - a schema bug


class _Wrong(Exception):
    """A value of the wrong type; the message says what was expected."""


def _integer(key, value, source) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Wrong("an integer")
    return value


def _number(key, value, source) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Wrong("a number")
    if not math.isfinite(value):
        raise _Wrong("a finite number")
    return float(value)


def _boolean(key, value, source) -> bool:
    if not isinstance(value, bool):
        raise _Wrong("true or false")
    return value


def _table(key, value, source) -> "Table":
    """A TOML table of numbers (or true/false), kept as sorted (name, value) pairs."""
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)
    if not isinstance(value, Mapping) or not all(
        isinstance(v, int | float | bool) and (isinstance(v, bool) or math.isfinite(v))
        for v in value.values()
    ):
        raise _Wrong("a table of numbers, e.g. { patience = 5 }")
    return tuple(sorted((str(k), v) for k, v in value.items()))


def _string(key, value, source) -> str:
    if not isinstance(value, str):
        raise _Wrong("a string")
    return value


def _sizes(key, value, source) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise _Wrong("a list of integers, e.g. [784, 30, 10]")
    return tuple(value)


def _names(key, value, source) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Wrong('a name or a list of names, e.g. "sigmoid" or ["tanh", "sigmoid"]')


def _overrides(key, value, source) -> tuple["Override", ...]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise _Wrong("a list of tables [[network.override]] with layer, neuron, activation")
    return tuple(_parse_section(key, Override, v, source) for v in value)


def _layer_specs(key, value, source) -> tuple[LayerSpec, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise _Wrong("a list of tables [[network.layer]], each with a kind")
    specs = []
    for i, table in enumerate(value, start=2):
        spec = _parse_section(key, LayerSpec, table, source)
        if spec.kind not in LAYER_KINDS:
            raise ConfigError(
                f"{source}: {key} (layer {i}): unknown kind {spec.kind!r}"
                f"{did_you_mean(spec.kind, LAYER_KINDS)}; the kinds: {', '.join(LAYER_KINDS)}"
            )
        extra = sorted(set(table) - {"kind", *LAYER_KINDS[spec.kind]})
        if extra:
            raise ConfigError(
                f"{source}: {key} (layer {i}, {spec.kind}): {', '.join(extra)} means nothing "
                f"here; a {spec.kind} layer takes {', '.join(LAYER_KINDS[spec.kind])}"
            )
        specs.append(spec)
    return tuple(specs)


#: A TOML table of numbers, held as sorted (name, value) pairs so a Config stays hashable.
Table = tuple[tuple[str, "int | float | bool"], ...]

_RULES = (
    (int, _integer),
    (float, _number),
    (bool, _boolean),
    ("Table", _table),
    (str, _string),
    (tuple[int, ...], _sizes),
    (str | tuple[str, ...], _names),
    (tuple[Override, ...], _overrides),
    (tuple[LayerSpec, ...], _layer_specs),
)


def _check_choices(config: Config, source: str, sources=None) -> None:
    """Every name names something, every number is in range, and the network can be built."""
    _check_names(config, source, sources)
    _check_ranges(config, source, sources)
    try:
        build_network(config)
    except FnbackpropError as err:
        keys = ("network.override", "network.sizes", "network.activation", "network.cost")
        where = _source(source, sources, *keys)
        raise ConfigError(f"{where}: [network] {err}") from None


def _check_names(config: Config, source: str, sources=None) -> None:
    n, t, d = config.network, config.training, config.data

    def choose(key: str, value: str, registry: Registry, set_as: str | None = None):
        try:
            registry.get(value)
        except FnbackpropError as err:
            where = _source(source, sources, set_as or key)
            raise ConfigError(f"{where}: {key}: {err}") from None

    names = (n.activation,) if isinstance(n.activation, str) else n.activation
    for name in names:
        choose("network.activation", name, activations.ACTIVATIONS)
    for o in n.override:
        choose(
            "network.override.activation", o.activation, activations.ACTIVATIONS, "network.override"
        )
    choose("network.cost", n.cost, costs.COSTS)
    for name in (n.init,) if isinstance(n.init, str) else n.init:
        choose("network.init", name, INITS)
    if not isinstance(n.init, str) and len(n.init) != len(n.sizes) - 1:
        raise ConfigError(
            f"{_source(source, sources, 'network.init')}: network.init lists {len(n.init)} "
            f"schemes for {len(n.sizes) - 1} layers: give one name, or one per layer after "
            "the input"
        )
    choose("training.optimizer", t.optimizer, OPTIMIZERS)
    choose("training.gradient", t.gradient, GRADIENTS)
    choose("training.schedule", t.schedule, SCHEDULES)
    choose("data.dataset", d.dataset, DATASETS)
    if t.dtype not in DTYPES:
        raise ConfigError(
            f"{_source(source, sources, 'training.dtype')}: training.dtype = {t.dtype!r} is not "
            f"one of: {', '.join(DTYPES)}{did_you_mean(t.dtype, DTYPES)}"
        )
    try:
        make_schedule(t.schedule, t.eta, t.epochs, **dict(t.schedule_args))
    except FnbackpropError as err:
        where = _source(source, sources, "training.schedule_args", "training.schedule")
        raise ConfigError(f"{where}: training.schedule_args: {err}") from None


def _check_ranges(config: Config, source: str, sources=None) -> None:
    t, d = config.training, config.data
    for key, value in (
        ("training.epochs", t.epochs),
        ("training.mini_batch_size", t.mini_batch_size),
        ("training.devices", t.devices),
        ("data.train_size", d.train_size),
    ):
        if value < 1:
            where = _source(source, sources, key)
            raise ConfigError(f"{where}: {key} must be at least 1, got {value}")
    for key, value in (
        ("training.eta", t.eta),
        ("training.lmbda", t.lmbda),
        ("training.l1", t.l1),
        ("training.early_stopping", t.early_stopping),
    ):
        if value < 0:
            raise ConfigError(
                f"{_source(source, sources, key)}: {key} must not be negative, got {value}"
            )
    if not 0 <= t.dropout < 1:
        raise ConfigError(
            f"{_source(source, sources, 'training.dropout')}: training.dropout is the probability "
            f"of dropping a hidden neuron, 0 ≤ p < 1, got {t.dropout}"
        )
    _check_layer_dropout(config, source, sources)
    if t.mini_batch_size > d.train_size:
        where = _source(source, sources, "training.mini_batch_size", "data.train_size")
        raise ConfigError(
            f"{where}: training.mini_batch_size = {t.mini_batch_size} is larger than "
            f"data.train_size = {d.train_size}"
        )
    try:
        check_divisible(t.mini_batch_size, t.devices)
    except ConfigError as err:
        where = _source(source, sources, "training.devices", "training.mini_batch_size")
        raise ConfigError(f"{where}: {err}") from None


def build_network(config: Config) -> Network:
    """The `Network` a config describes, per-neuron overrides included (or its stack of
    `[[network.layer]]`s)."""
    n = config.network
    if n.layer:
        return Network(layer_stack(config)[0], cost=n.cost)
    n_layers = len(n.sizes) - 1
    layer_names = [n.activation] * n_layers if isinstance(n.activation, str) else list(n.activation)
    if len(layer_names) != n_layers:
        raise FnbackpropError(
            f"activation lists {len(layer_names)} names for the {n_layers} layers after the "
            f"input of sizes {list(n.sizes)} (a list is one σ per layer; to try several σ, "
            f'list them in [{SWEEP}]: "network.activation" = [...])'
        )
    sigmas: list = list(layer_names)
    by_layer: dict[int, dict[int, str]] = {}
    for o in n.override:
        if not 2 <= o.layer <= len(n.sizes):
            raise FnbackpropError(
                f"override layer {o.layer} does not exist: layers are 2..{len(n.sizes)} "
                "(layers count from 1, the input)"
            )
        size = n.sizes[o.layer - 1]
        if not 0 <= o.neuron < size:
            raise FnbackpropError(
                f"override neuron {o.neuron} does not exist in layer {o.layer}: neurons count "
                f"from 0, so they are 0..{size - 1}"
            )
        if o.neuron in by_layer.get(o.layer, {}):
            raise FnbackpropError(
                f"neuron {o.neuron} of layer {o.layer} is overridden twice (neurons count from 0, "
                "layers from 1, the input): give one [[network.override]] per neuron"
            )
        by_layer.setdefault(o.layer, {})[o.neuron] = o.activation
    for layer, neurons in by_layer.items():
        sigmas[layer - 2] = activations.neuronwise(layer_names[layer - 2], neurons)
    return Network(n.sizes, sigmas, n.cost)


# -- writing ---------------------------------------------------------------------------------


def dumps(config: Config, axes: Mapping[str, list] | None = None) -> str:
    """The config as TOML text that `load` reads back to an equal `Config`, written by `tomli_w`
    (any string, newlines and control characters included, escaped as TOML wants): the three
    sections in order, every key spelled out, the overridden neurons as a list of inline tables
    (`network.override`), `schedule_args` as the table `[training.schedule_args]`.

    With `axes` (`section.key` → values), a `[sweep]` table lists them: the file of a sweep,
    which `load_sweep` reads back to the same runs.
    """
    axes = axes or {}
    document = {}
    for name in _SECTIONS:
        section = getattr(config, name)
        table = {}
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if field.name == "override":
                value = [dataclasses.asdict(o) for o in value] or None
            elif field.name == "layer":
                value = [_layer_table(spec) for spec in value] or None
            if value is not None:
                table[field.name] = _toml_value(value)
        document[name] = table
    if axes:
        document[SWEEP] = {
            key: [  # a value of network.override is a list of tables: () is no overrides
                [dataclasses.asdict(o) for o in v] if key == "network.override" else _toml_value(v)
                for v in values
            ]
            for key, values in axes.items()
        }
    return tomli_w.dumps(document)


def _layer_table(spec: LayerSpec) -> dict[str, Any]:
    """A `[[network.layer]]` table: its kind and the keys that kind takes (init and dropout when
    given)."""
    keys = [k for k in LAYER_KINDS[spec.kind] if k not in ("init", "dropout") or getattr(spec, k)]
    return {"kind": spec.kind, **{k: getattr(spec, k) for k in keys}}


def _toml_value(value: Any) -> Any:
    """`value` as `tomli_w` writes it: a table of numbers (`schedule_args`, held as pairs) as a
    dict, an override as its table, tuples as lists."""
    if isinstance(value, Override):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        value = tuple(value.items())
    if (
        isinstance(value, tuple)
        and all(isinstance(p, tuple) and len(p) == 2 for p in value)
        and (value == () or all(isinstance(k, str) for k, _ in value))
    ):  # a table of numbers: schedule_args
        return {k: _toml_value(v) for k, v in value}
    if isinstance(value, tuple | list):
        return [_toml_value(v) for v in value]
    return value
