"""Configs: the shipped files, defaults, overrides, and errors that name the key and the choices."""

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from fnbackprop import activations, config
from fnbackprop.activations import Neuronwise
from fnbackprop.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_chapter1_config_is_the_books_first_network():
    c = config.load(CONFIGS / "chapter1.toml")
    assert c.network.sizes == (784, 30, 10)
    assert (c.network.activation, c.network.cost, c.network.init) == (
        "sigmoid",
        "quadratic",
        "normal",
    )
    t = c.training
    assert (t.epochs, t.mini_batch_size, t.eta, t.optimizer, t.gradient) == (
        30,
        10,
        3.0,
        "sgd",
        "backprop",
    )
    assert c.data.dataset == "mnist"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds(path):
    for c in config.load_sweep(path).runs.values():  # one run, or each run of a [sweep]
        net = config.build_network(c)
        assert net.sizes == c.network.sizes


def test_shipped_configs_cover_the_issue():
    found = {
        (
            c.network.sizes,
            c.training.eta,
            c.network.cost,
            c.training.lmbda,
            c.training.mini_batch_size,
        )
        for path in CONFIGS.glob("*.toml")
        for c in config.load_sweep(path).runs.values()
    }
    for wanted in [
        ((784, 30, 10), 3.0, "quadratic", 0.0, 10),
        ((784, 100, 10), 3.0, "quadratic", 0.0, 10),
        ((784, 100, 10), 0.001, "quadratic", 0.0, 10),
        ((784, 30, 10), 100.0, "quadratic", 0.0, 10),
        ((784, 10), 3.0, "quadratic", 0.0, 10),
        ((784, 30, 10), 0.5, "cross_entropy", 0.0, 10),
        ((784, 100, 10), 0.5, "cross_entropy", 5.0, 10),
    ]:
        assert wanted in found


def test_a_file_need_only_say_what_differs(tmp_path):
    c = config.load(write(tmp_path, "[training]\neta = 0.5\n"))
    assert c.training.eta == 0.5
    assert c == dataclasses.replace(config.Config(), training=dataclasses.replace(c.training))
    assert c.network == config.Config().network


def test_overrides_are_read_as_toml_or_as_bare_words(tmp_path):
    path = write(tmp_path, "")
    c = config.load(
        path,
        [
            "training.eta=0.25",
            "network.activation=tanh",
            "network.sizes=[784, 100, 10]",
            "training.epochs = 3",
            "data.dataset=fashion_mnist",
        ],
    )
    assert (c.training.eta, c.network.activation, c.training.epochs) == (0.25, "tanh", 3)
    assert c.network.sizes == (784, 100, 10)
    assert c.data.dataset == "fashion_mnist"
    c = config.load(path, ['network.activation=["relu", "softmax"]', "network.cost=log_likelihood"])
    assert c.network.activation == ("relu", "softmax")


def test_integers_are_accepted_where_numbers_are_expected(tmp_path):
    assert config.load(write(tmp_path, "[training]\neta = 3\n")).training.eta == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[trainig]\neta = 1.0",
            r"unknown section \[trainig\] \(did you mean 'training'\?\); valid sections: network, "
            "training, data",
        ),
        (
            "[training]\netaa = 1.0",
            r"unknown key training.etaa \(did you mean 'eta'\?\); valid keys in \[training\]: "
            "epochs, ",
        ),
        (
            "[network]\nsize = [784, 10]",
            r"unknown key network.size \(did you mean 'sizes'\?\); valid keys in \[network\]: ",
        ),
        ("[training]\nvelocity = 2", r"unknown key training.velocity; valid keys in \[training"),
        ('[training]\neta = "fast"', "training.eta must be a number, got 'fast'"),
        ("[training]\nepochs = 1.5", "training.epochs must be an integer"),
        ("[training]\nepochs = true", "training.epochs must be an integer"),
        ('[network]\nsizes = [784, "30", 10]', "network.sizes must be a list of integers"),
        ("[network]\nactivation = 3", "network.activation must be a name or a list of names"),
        (
            '[network]\nactivation = "sigmod"',
            r"run.toml: network.activation: unknown activation 'sigmod' \(did you mean 'sigmoid'"
            r"\?\); valid names: sigmoid, tanh, linear, .*; or your own as 'package.module:Name'$",
        ),
        (
            '[network]\nactivation = ["tanh", "Leaky-ReLU"]',
            r"network.activation: unknown activation 'Leaky-ReLU' \(did you mean 'leaky_relu'",
        ),
        (
            '[network]\ncost = "mse"',
            r"network.cost: unknown cost 'mse'; valid names: quadratic, cross_entropy",
        ),
        (
            '[network]\ninit = "xavier"',
            r"network.init: unknown init scheme 'xavier'; valid names: normal, scaled",
        ),
        (
            '[training]\noptimizer = "sgdd"',
            r"training.optimizer: unknown optimizer 'sgdd' \(did you mean 'sgd'\?\); valid names: "
            "sgd, momentum, adam",
        ),
        (
            '[training]\ngradient = "grad"',
            r"training.gradient: unknown gradient method 'grad'.*; valid names: backprop, "
            "backprop_batch, autodiff, backprop_vjp",
        ),
        ('[training]\ndtype = "float16"', "is not one of: float32, float64"),
        ('[training]\ndtype = "float23"', r"float64 \(did you mean 'float32'\?\)$"),
        (
            '[data]\ndataset = "cifar"',
            r"data.dataset: unknown dataset 'cifar'; valid names: mnist, mnist_pkl, fashion_mnist",
        ),
        (
            '[data]\ndataset = "fashion-mnist"',
            r"data.dataset: unknown dataset 'fashion-mnist' \(did you mean 'fashion_mnist'\?\)",
        ),
        (
            '[network]\nactivation = "no_such_module:Swish"',
            r"network.activation: activation 'no_such_module:Swish': no module named "
            "'no_such_module'",
        ),
        ("[training]\neta = -1.0", "training.eta must not be negative"),
        ("[training]\nepochs = 0", "training.epochs must be at least 1"),
        (
            "[training]\nmini_batch_size = 20\n[data]\ntrain_size = 10",
            "larger than data.train_size",
        ),
        ('[network]\nactivation = ["tanh"]', "1 names for the 2 layers"),
        ('[network]\nactivation = "relu"\ncost = "cross_entropy"', "relu"),
        ("[training]\neta = nan", "training.eta must be a finite number"),
        ("training = 3", "training must be a section"),
        ("[network\n", "is not valid TOML"),
    ],
)
def test_bad_configs_are_rejected_with_the_key_and_the_choices(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.eta", "expected section.key=value"),
        ("eta=0.5", "expected section.key=value"),
        ("training.eta=fast", "training.eta must be a number, got 'fast'"),
        ("training.speed=2", "unknown key training.speed"),
        ("network.activation=sigmod", "network.activation: unknown activation 'sigmod'"),
        ("data.dataset=mnist-pkl", r"unknown dataset 'mnist-pkl' \(did you mean 'mnist_pkl'\?\)"),
    ],
)
def test_bad_overrides_are_rejected(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, ""), [override])


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        config.load(tmp_path / "nope.toml")


def test_per_neuron_overrides_build_a_modified_layer(tmp_path):
    text = """
[network]
sizes = [784, 30, 10]
[[network.override]]
layer = 2
neuron = 5
activation = "tanh"
[[network.override]]
layer = 2
neuron = 7
activation = "linear"
"""
    net = config.build_network(config.load(write(tmp_path, text)))
    hidden = net.activations[0]
    assert isinstance(hidden, Neuronwise)
    assert dict(hidden.overrides) == {5: activations.get("tanh"), 7: activations.get("linear")}
    assert net.activations[1] == activations.get("sigmoid")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("layer = 1\nneuron = 0\nactivation = 'tanh'", "layers are 2..3"),
        (
            "layer = 2\nneuron = 30\nactivation = 'tanh'",
            "override neuron 30 does not exist in layer 2: neurons count from 0, so they are 0..29",
        ),
        ("layer = 2\nneuron = -1\nactivation = 'tanh'", "override neuron -1 does not exist"),
        ("layer = 4\nneuron = 0\nactivation = 'tanh'", "override layer 4 does not exist"),
        ("layer = 2\nneuron = 0\nactivation = 'tahn'", "unknown activation 'tahn'"),
        ("layer = 2\nneuron = 0\nactivation = 'softmax'", "plain elementwise"),
        ("layer = 2\nneuron = 0\nactivaton = 'tanh'", "unknown key network.override.activaton"),
    ],
)
def test_bad_neuron_overrides_are_rejected(tmp_path, table, message):
    text = f"[network]\nsizes = [784, 30, 10]\n[[network.override]]\n{table}\n"
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text))


def test_neurons_count_from_zero_to_size_minus_one(tmp_path):
    for neuron in (0, 29):
        text = (
            "[network]\nsizes = [784, 30, 10]\n[[network.override]]\n"
            f"layer = 2\nneuron = {neuron}\nactivation = 'tanh'\n"
        )
        hidden = config.build_network(config.load(write(tmp_path, text))).activations[0]
        assert dict(hidden.overrides) == {neuron: activations.get("tanh")}
    text = "[network]\nsizes = [784, 30, 10]\n[[network.override]]\n"
    text += "layer = 3\nneuron = 9\nactivation = 'tanh'\n"  # the last output neuron
    net = config.build_network(config.load(write(tmp_path, text)))
    assert dict(net.activations[1].overrides) == {9: activations.get("tanh")}


def test_a_neuron_overridden_twice_is_an_error(tmp_path):
    text = "[network]\nsizes = [784, 30, 10]\n"
    for activation in ("tanh", "linear"):
        text += f"[[network.override]]\nlayer = 2\nneuron = 5\nactivation = '{activation}'\n"
    with pytest.raises(ConfigError, match="neuron 5 of layer 2 is overridden twice"):
        config.load(write(tmp_path, text))


def test_an_override_given_by_set_is_blamed_on_the_command_line_and_says_how_to_count(tmp_path):
    path = write(tmp_path, "[network]\nsizes = [784, 30, 10]\n")
    twice = '[{layer=2, neuron=1, activation="tanh"}, {layer=2, neuron=1, activation="relu"}]'
    cases = {
        twice: "overridden twice (neurons count from 0, layers from 1, the input)",
        '[{layer=2, neuron=40, activation="tanh"}]': "neurons count from 0, so they are 0..29",
        '[{layer=2, neuron=1, activation="tahn"}]': "unknown activation 'tahn'",
    }
    for value, message in cases.items():
        with pytest.raises(ConfigError) as info:
            config.load(path, [f"network.override={value}"])
        assert str(info.value).startswith(f"--set network.override={value}: "), str(info.value)
        assert message in str(info.value)


def test_an_import_path_works_wherever_a_name_does_and_is_kept_as_written(tmp_path):
    text = """
[network]
sizes = [784, 30, 10]
activation = ["fnbackprop.activations:Tanh", "sigmoid"]
cost = "fnbackprop.costs:CrossEntropy"
[training]
optimizer = "fnbackprop.optimizers:momentum"
gradient = "fnbackprop.training:backprop_vjp"
"""
    c = config.load(write(tmp_path, text))
    assert c.network.activation == ("fnbackprop.activations:Tanh", "sigmoid")
    assert c.network.cost == "fnbackprop.costs:CrossEntropy"
    net = config.build_network(c)
    assert net.activations == (activations.get("tanh"), activations.get("sigmoid"))
    assert net.cost.name == "cross_entropy"
    path = tmp_path / "resolved.toml"
    path.write_text(config.dumps(c))
    assert config.load(path) == c


def test_dumps_writes_what_load_reads_back(tmp_path):
    text = """
[network]
sizes = [784, 30, 10]
activation = ["tanh", "softmax"]
cost = "log_likelihood"
[[network.override]]
layer = 2
neuron = 1
activation = "relu"
[training]
eta = 0.1
lmbda = 5.0
optimizer = "adam"
[data]
dir = "C:\\\\data \\"quoted\\""
"""
    original = config.load(write(tmp_path, text))
    path = tmp_path / "resolved.toml"
    path.write_text(config.dumps(original))
    assert config.load(path) == original
    assert "train_size = 50000" in config.dumps(original)  # every key spelled out


HOSTILE = [
    "line one\nline two",
    "tab\there, carriage\rreturn, form\ffeed, back\bspace",
    "\x00 nul \x01 \x1f \x7f \x1b[31m escape",
    "double \" quote, single ' quote, triple \"\"\" and '''",
    "back\\slash \\n not a newline \\u0041 C:\\data\\",
    "unicode é ü 中文 😀 \u2028 \u00a0",
    "# not a comment = [not a table]",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_dumps_escapes_any_string_and_load_reads_it_back(tmp_path, text):
    """`data.dir` is any string the user gave; the file `dumps` writes (after the label comment
    a run puts on its first line) is valid TOML that loads back to the same config."""
    c = config.load(CONFIGS / "chapter1.toml")
    hostile = dataclasses.replace(c, data=dataclasses.replace(c.data, dir=text))
    path = tmp_path / "resolved.toml"
    path.write_text(f"# label: --set data.dir=...\n{config.dumps(hostile)}", encoding="utf-8")
    assert config.load(path) == hostile
    assert config.load(path).data.dir == text


# -- chapter 3's keys, sweeps, and where an error came from ---------------------------------------


def test_chapter3_keys_have_defaults_and_round_trip(tmp_path):
    t = config.Config().training
    assert (t.l1, t.dropout, t.early_stopping, t.schedule, t.schedule_args) == (
        0.0, 0.0, 0, "constant", ()
    )  # fmt: skip
    assert (t.monitor_training_cost, t.monitor_training_accuracy) == (False, False)
    text = """
[training]
l1 = 0.5
dropout = 0.5
early_stopping = 10
schedule = "halve_on_plateau"
schedule_args = { patience = 5, halvings = 7 }
monitor_training_cost = true
monitor_training_accuracy = true
"""
    c = config.load(write(tmp_path, text))
    assert c.training.schedule_args == (("halvings", 7), ("patience", 5))
    path = tmp_path / "resolved.toml"
    path.write_text(config.dumps(c))
    assert config.load(path) == c


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.dropout=1.0", "training.dropout is the probability of dropping a hidden neuron"),
        ("training.l1=-1", "training.l1 must not be negative"),
        ("training.early_stopping=-2", "training.early_stopping must not be negative"),
        ("training.schedule=halve", r"unknown schedule 'halve'; valid names: constant, halve_on"),
        ("training.schedule_args={patience='x'}", "must be a table of numbers"),
        ("training.schedule_args={nope=1}", "schedule 'constant': .*unexpected keyword .*nope"),
        ("training.monitor_training_cost=1", "monitor_training_cost must be true or false"),
    ],
)
def test_bad_chapter3_values_are_rejected(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, ""), [override])


@pytest.mark.parametrize("patience", ["0", "-1", "2.5"])
def test_halve_on_plateau_needs_a_whole_patience_of_at_least_one(tmp_path, patience):
    path = write(tmp_path, '[training]\nschedule = "halve_on_plateau"\n')
    item = f"training.schedule_args={{patience={patience}}}"
    message = f"^--set {re.escape(item)}: .*patience must be a whole number, at least 1, got"
    with pytest.raises(ConfigError, match=message):
        config.load(path, [item])
    assert config.load(path, ["training.schedule_args={patience=2.0}"])  # a whole float will do


def test_an_error_in_a_set_value_names_the_command_line_not_the_file(tmp_path):
    path = write(tmp_path, "[training]\neta = 0.5\n")
    cases = {
        "training.eta=abc": "--set training.eta=abc: training.eta must be a number, got 'abc'",
        "training.etta=1": "--set training.etta=1: unknown key training.etta",
        "network.cost=mse": "--set network.cost=mse: network.cost: unknown cost 'mse'",
        "training.mini_batch_size=600": "--set training.mini_batch_size=600: training.mini_batch",
        "trainig.eta=1": "--set trainig.eta=1: unknown section [trainig]",
    }
    for item, expected in cases.items():
        extra = ["data.train_size=500"] if "mini_batch" in item else []
        with pytest.raises(ConfigError) as info:
            config.load(path, [item, *extra])
        assert str(info.value).startswith(expected), str(info.value)
        assert str(path) not in str(info.value)
    with pytest.raises(ConfigError, match=rf"^{path}: training.eta must be a number"):
        config.load(write(tmp_path, '[training]\neta = "x"\n'), ["training.epochs=3"])


def test_lists_where_numbers_are_expected_make_a_sweep(tmp_path):
    path = write(tmp_path, "[training]\neta = [0.1, 3.0]\n")
    sweep = config.load_sweep(path, ["training.seed=[0, 1, 2]"])
    assert sweep.axes == {"training.eta": [0.1, 3.0], "training.seed": [0, 1, 2]}
    assert list(sweep.runs)[:4] == ["eta=0.1,seed=0", "eta=0.1,seed=1", "eta=0.1,seed=2",
                                    "eta=3.0,seed=0"]  # fmt: skip
    assert sweep.runs["eta=3.0,seed=1"].training.eta == 3.0
    assert len(sweep.runs) == 6
    with pytest.raises(ConfigError, match=rf"^{path}: training.eta is swept, \[0.1, 3.0\]"):
        config.load(path)
    with pytest.raises(ConfigError, match=r"^--set training.seed=\[1, 1\]: .* lists a value twice"):
        config.load_sweep(path, ["training.seed=[1, 1]"])
    # runs are named by the values as read: 1 and 3 are η = 1.0 and 3.0, and 1 = 1.0 is one run
    assert list(config.load_sweep(path, ["training.eta=[1, 3]"]).runs) == ["eta=1.0", "eta=3.0"]
    with pytest.raises(ConfigError, match=r"two runs of the sweep are the same run, eta=1\.0"):
        config.load_sweep(path, ["training.eta=[1, 1.0]"])
    single = config.load_sweep(write(tmp_path, ""))
    assert single.axes == {} and list(single.runs) == [""]


# -- [[network.layer]]: chapter 6's stacks --------------------------------------------------------

LAYERED = """
[network]
cost = "log_likelihood"
init = "network3"

[[network.layer]]
kind = "conv_pool"
filters = 3
kernel = 5
pool = 2

[[network.layer]]
kind = "dense"
size = 10
activation = "softmax"
init = "zeros"
"""


def test_a_stack_of_layers_is_built_and_round_trips():
    parsed = config.parse(tomllib.loads(LAYERED))
    assert parsed.network.sizes == (784, 3 * 12 * 12, 10)
    assert parsed.network.activation == ("sigmoid", "softmax")
    assert parsed.network.init == ("network3", "zeros")
    net = config.build_network(parsed)
    assert [type(layer).__name__ for layer in net.layers] == ["ConvPool", "Dense"]
    assert config.parse(tomllib.loads(config.dumps(parsed))) == parsed


def test_a_layer_drops_its_own_outputs_and_training_dropout_all_alike():
    stacked = LAYERED.replace("pool = 2\n", "pool = 2\ndropout = 0.5\n")
    parsed = config.parse(tomllib.loads(stacked))
    assert config.dropout(parsed) == (0.5,)  # one p per hidden layer
    assert config.parse(tomllib.loads(config.dumps(parsed))) == parsed
    network = config.dumps(config.parse(tomllib.loads(LAYERED))).split("[training]")[0]
    assert "dropout" not in network  # written only where a layer gives it
    plain = config.parse(config.apply_overrides(tomllib.loads(LAYERED), ["training.dropout=0.3"]))
    assert config.dropout(plain) == 0.3


@pytest.mark.parametrize(
    ("edit", "overrides", "message"),
    [
        (("pool = 2\n", "pool = 2\ndropout = 1.0\n"), [], "layer 2's dropout is the probability"),
        (('init = "zeros"', 'init = "zeros"\ndropout = 0.5'), [], "output layer's dropout"),
        (("pool = 2\n", "pool = 2\ndropout = 0.5\n"), ["training.dropout=0.5"], "one or the other"),
    ],
)
def test_a_wrong_layer_dropout_is_one_line(edit, overrides, message):
    with pytest.raises(ConfigError) as err:
        raw = config.apply_overrides(tomllib.loads(LAYERED.replace(*edit)), overrides)
        config.parse(raw, source="net.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", [f"chapter6_rung{r}" for r in range(2, 7)])
def test_the_ladders_configs_load(name):
    loaded = config.load(REPO / "experiments" / "configs" / f"{name}.toml")
    assert loaded.network.layer and loaded.network.sizes[-1] == 10
    assert config.parse(tomllib.loads(config.dumps(loaded))) == loaded


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('kind = "dense"', 'kind = "dence"'), "unknown kind 'dence' (did you mean 'dense'?)"),
        (("size = 10", "size = 10\nfilters = 4"), "filters means nothing here"),
        (("kernel = 5", "kernel = 29"), "larger than the 28 × 28 image"),
        (("pool = 2", "pool = 5"), "pool"),
        (('init = "network3"', 'init = "network3"\nsizes = [784, 10]'), "does not match"),
        (("size = 10", "size = 0"), "size must be at least 1"),
    ],
)
def test_a_wrong_layer_is_one_line(edit, message):
    text = LAYERED.replace(*edit)
    with pytest.raises(ConfigError) as err:
        config.parse(tomllib.loads(text), source="net.toml")
    line = str(err.value)
    assert message in line and "\n" not in line and line.startswith("net.toml")


# -- [sweep]: any key by its dotted path (issue 17) ----------------------------------------------


def test_a_sweep_table_names_any_key_and_set_says_the_same(tmp_path):
    """Quoted or bare dotted keys in [sweep], `--set sweep.KEY=[...]` with or without quotes,
    and the number shorthand: one sweep, its runs named by the values, read back from its file."""
    path = write(
        tmp_path,
        '[network]\nactivation = "sigmoid"\n[training]\neta = [0.5, 3.0]\n[sweep]\n'
        '"network.activation" = ["sigmoid", "tanh"]\nnetwork.sizes = [[784, 30, 10], '
        "[784, 100, 10]]\n",
    )
    sweep = config.load_sweep(path, ['sweep."training.seed"=[0, 1]'])
    assert list(sweep.axes) == [
        "training.eta", "network.activation", "network.sizes", "training.seed",
    ]  # fmt: skip
    assert len(sweep.runs) == 16
    name = "eta=3.0,activation=tanh,sizes=[784,100,10],seed=1"
    assert sweep.runs[name].network.activation == "tanh"
    assert sweep.runs[name].network.sizes == (784, 100, 10)
    plain = write(tmp_path, "[training]\neta = [0.5, 3.0]\n")
    same = config.load_sweep(plain, [
        'sweep.network.activation=["sigmoid", "tanh"]',
        "sweep.network.sizes=[[784, 30, 10], [784, 100, 10]]",
        "sweep.training.seed=[0, 1]",
    ])  # fmt: skip
    assert same == sweep
    saved = tmp_path / "sweep.toml"
    saved.write_text(config.dumps(next(iter(sweep.runs.values())), sweep.axes))
    assert "[sweep]" in saved.read_text() and config.load_sweep(saved) == sweep
    one = tmp_path / "one.toml"
    one.write_text("")
    item = 'sweep.network.activation=["sigmoid", "tanh"]'
    with pytest.raises(ConfigError) as info:
        config.load(one, [item])
    assert str(info.value).startswith(
        f"--set {item}: network.activation is swept, ['sigmoid', 'tanh']: that makes a sweep"
    )


@pytest.mark.parametrize(
    "item, message",
    [
        ('sweep.network.activaton=["tanh"]',
         "--set sweep.network.activaton=[\"tanh\"]: unknown key network.activaton in [sweep] "
         "(did you mean 'network.activation'?); a swept key is section.key, one of: "
         "network.sizes, network.activation, network.cost"),
        ("sweep.network.activation=[sigmoid,tanh]",
         "--set sweep.network.activation=[sigmoid,tanh]: [sweep] network.activation must be a "
         "list of the values to try, got '[sigmoid,tanh]' (quote names: [\"sigmoid\", \"tanh\"])"),
        ("sweep.training.eta=[1.0, 2.0]",
         "--set sweep.training.eta=[1.0, 2.0]: training.eta is swept twice, in [sweep] and as a "
         "list in [training]: give its values in one place"),
        ('network.cost=["quadratic", "cross_entropy"]',
         "network.cost must be a string, got ['quadratic', 'cross_entropy']; to try several, "
         "list them in [sweep]: \"network.cost\" = [...] (or --set 'sweep.network.cost=[...]')"),
        ('network.activation=["sigmoid", "tanh", "relu"]',
         "activation lists 3 names for the 2 layers after the input of sizes [784, 30, 10] (a "
         "list is one σ per layer; to try several σ, list them in [sweep]"),
        ('sweeps.training.seed=[0, 1]',
         "unknown section [sweeps] (did you mean 'sweep'?); valid sections: network, training, "
         "data, sweep"),
    ],
)  # fmt: skip
def test_a_sweep_mistake_is_one_line_naming_the_choices(tmp_path, item, message):
    path = write(tmp_path, "[training]\neta = [0.5, 3.0]\n")
    with pytest.raises(ConfigError) as info:
        config.load_sweep(path, [item])
    assert message in str(info.value) and "\n" not in str(info.value)
