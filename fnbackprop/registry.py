"""Named choices, one mechanism for all of them: activations, costs, init schemes, gradient
methods, optimizers, data sets.

A `Registry` maps names to objects. Wherever fnbackprop accepts a name — in Python
(`Network(sizes, "tanh")`), in a TOML config, in `--set`, in `fnbackprop check` — it accepts any
of three *specs*, resolved by `Registry.get`:

- a built-in name: `"sigmoid"`, `"cross_entropy"`, `"sgd"`, `"mnist"`;
- a name registered with `register` (in this process), or declared by an installed package as an
  entry point in the group `fnbackprop.<kind>s` (e.g. `fnbackprop.activations`);
- an import path `"package.module:Name"`: `Name` is imported from `package.module` (searched on
  `sys.path`, then in the current folder); a class is built with no arguments.

One name rule holds everywhere: a name is lowercase letters, digits and `_`, starting with a
letter (`leaky_relu`), matched exactly; a near miss (`"Leaky-ReLU"`) is refused with the name it
resembles (`did_you_mean`, also used for config keys). A name that an imported module lacks is
refused with what the module has of the kind (its activations, say), and the nearest. A name
that clashes with a built-in cannot be registered.

An object given directly (an `Activation` instance, say) is passed through the registry's check,
so a mistake is reported where the object is first given, in one line, not later inside `jit`.
"""

import difflib
import importlib
import importlib.metadata
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .errors import FnbackpropError

__all__ = [
    "NAME_RULE",
    "Registry",
    "check_name",
    "did_you_mean",
    "import_object",
    "is_import_path",
]

T = TypeVar("T")

#: A name: lowercase letters, digits and '_', starting with a letter.
NAME_RULE = re.compile(r"[a-z][a-z0-9_]*\Z")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def check_name(name: object, kind: str) -> str:
    """`name` if it follows the name rule, else `FnbackpropError` saying what the rule is."""
    if not isinstance(name, str) or not NAME_RULE.match(name):
        example = _normalize(name) if isinstance(name, str) else "swish"
        raise FnbackpropError(
            f"{name!r} is not a valid {kind} name: use lowercase letters, digits and _, "
            f"starting with a letter (e.g. {example!r})"
        )
    return name


def is_import_path(spec: object) -> bool:
    """Whether `spec` is written as an import path, `package.module:Name`."""
    return isinstance(spec, str) and ":" in spec


def import_object(
    spec: str,
    kind: str = "object",
    *,
    fits: Callable[[Any], bool] | None = None,
    plural: str | None = None,
) -> Any:
    """The object an import path `package.module:Name` names (`Name` may be dotted).

    The module is searched on `sys.path` and then in the current folder (as `python -m` would),
    so a module file beside the config works from the command line too. Every failure is one
    `FnbackpropError` naming the module and how to make it importable; a name the module lacks
    is answered with the nearest of its names and those that `fits` accepts (its `plural`, e.g.
    its activations), else all its public names.
    """
    module_name, _, attribute = spec.strip().partition(":")
    if not _DOTTED.match(module_name) or not _DOTTED.match(attribute):
        raise FnbackpropError(
            f"{kind} {spec!r}: an import path is 'package.module:Name', e.g. 'my_sigmas:Swish'"
        )
    module = _import_module(module_name, spec, kind)
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            offer = _what_it_has(value, part, fits, plural or f"{kind}s")
            raise FnbackpropError(
                f"{kind} {spec!r}: module {module_name!r} ({getattr(module, '__file__', '?')}) "
                f"has no {attribute!r}{offer}"
            ) from None
    return value


#: At most this many of a module's names in a message.
_MAX_LISTED = 12


def _what_it_has(owner: Any, missing: str, fits: Callable[[Any], bool] | None, plural: str) -> str:
    """'; its activations: A, B' — what `owner` (a module, or a class in it) offers instead of
    `missing`: the public names `fits` accepts, else every public name, and the nearest."""
    public = [n for n in getattr(owner, "__all__", None) or dir(owner) if not n.startswith("_")]
    with warnings.catch_warnings():  # looking at a deprecated name (optax has some) is no use
        warnings.simplefilter("ignore")
        found = {n: getattr(owner, n, None) for n in public}
    public = [n for n in public if not inspect.ismodule(found[n])]
    fitting = [n for n in public if fits is not None and _accepts(fits, found[n])]
    names, label = (fitting, f"its {plural}") if fitting else (public, "its public names")
    if not names:
        return "; it has no public names"
    listed = ", ".join(names[:_MAX_LISTED]) + (", …" if len(names) > _MAX_LISTED else "")
    hint = did_you_mean(missing, names)
    none = f" (none is one of the {plural})" if fits is not None and not fitting else ""
    return f"{hint}; {label}{none}: {listed}"


def _accepts(fits: Callable[[Any], bool], obj: Any) -> bool:
    try:
        return bool(fits(obj))
    except Exception:  # building someone's class to look at it: any failure means no
        return False


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the choice nearest `word` (compared as names, so 'Leaky-ReLU'
    is near 'leaky_relu' and 'swsh' near 'Swish'), or '' when none is near enough."""
    by_name: dict[str, str] = {}
    for choice in choices:
        by_name.setdefault(_normalize(choice), choice)
    near = difflib.get_close_matches(_normalize(word), list(by_name), n=1, cutoff=0.75)
    return f" (did you mean {by_name[near[0]]!r}?)" if near else ""


def _import_module(module_name: str, spec: str, kind: str):
    top = module_name.split(".")[0]
    for attempt in range(2):
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            missing = err.name or ""
            is_ours = missing == module_name or module_name.startswith(missing + ".")
            if not is_ours:  # the module exists, but something it imports does not
                raise FnbackpropError(
                    f"{kind} {spec!r}: importing {module_name!r} failed: {err}"
                ) from None
            cwd = os.getcwd()
            if attempt == 0 and cwd not in sys.path and "" not in sys.path:
                sys.path.append(cwd)  # last, so nothing installed is shadowed
                importlib.invalidate_caches()
                continue
            raise FnbackpropError(
                f"{kind} {spec!r}: no module named {missing!r}; make it importable: run from the "
                f"folder that holds {top}.py (or the package {top}/), add that folder to "
                f"PYTHONPATH, or pip install the package that provides it"
            ) from None
        except FnbackpropError as err:  # the module's own registration refused something
            raise FnbackpropError(f"{kind} {spec!r}: importing {module_name!r}: {err}") from None
        except Exception as err:  # any error while the module runs
            raise FnbackpropError(
                f"{kind} {spec!r}: importing {module_name!r} raised "
                f"{type(err).__name__}: {' '.join(str(err).split())}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def functions(description: str) -> Callable[[Any], Callable]:
    """The check of a registry of functions: a callable passes as it is; anything else is one
    `FnbackpropError` line, `description` (what it should be) and what it was."""

    def check(obj: Any) -> Callable:
        if not callable(obj):
            raise FnbackpropError(f"{description}, not {obj!r}")
        return obj

    return check


def parameter_names(fn: Callable) -> tuple[str, ...]:
    """The names of `fn`'s parameters (() when Python cannot read its signature)."""
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        return ()


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.strip().lower())


class Registry(Generic[T]):
    """Names → objects of one kind, with the three kinds of spec described in the module doc.

    **Arguments:**

    - `kind`: what the objects are, for messages: "activation", "cost", "optimizer", …
    - `check`: turns an object given directly, imported or registered into a valid one (for
      example builds a class with no arguments) or raises `FnbackpropError` saying what to write.
    - `name_of`: the name an object carries (`obj.name` by default), used by `register(obj)`.
    - `builtins`: the built-in objects, by name.
    """

    def __init__(
        self,
        kind: str,
        check: Callable[[Any], T],
        builtins: "dict[str, T] | Iterable[T]" = (),
        *,
        name_of: Callable[[T], str] = lambda obj: obj.name,
        plural: str | None = None,
    ):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._check = check
        self._name_of = name_of
        self._builtins: dict[str, T] = {}
        self._registered: dict[str, T] = {}
        items = builtins.items() if isinstance(builtins, dict) else ((None, b) for b in builtins)
        for name, obj in items:
            obj = check(obj)
            self._builtins[check_name(name or name_of(obj), kind)] = obj

    @property
    def entry_point_group(self) -> str:
        """The entry-point group an installed package declares its objects in."""
        return f"fnbackprop.{self.plural.replace(' ', '_')}"

    def builtin_names(self) -> tuple[str, ...]:
        """The names fnbackprop ships."""
        return tuple(self._builtins)

    def names(self) -> tuple[str, ...]:
        """Every name usable now: built-ins first, then the registered ones."""
        return (*self._builtins, *self._registered)

    def is_builtin(self, obj: T) -> bool:
        """Whether `obj` is one of the built-in objects."""
        return any(obj is b or obj == b for b in self._builtins.values())

    def register(self, obj: Any, name: str | None = None, *, replace: bool = False) -> T:
        """Make `obj` usable by `name` (default: its own name) everywhere a built-in name is.

        `obj` is checked first. A built-in name cannot be taken. A name registered before may be
        registered again by a class of the same module and name (a module or a notebook cell run
        twice); anything else under a taken name needs `replace=True`. Returns the checked object.
        """
        obj = self._check(obj)
        name = check_name(self._name_of(obj) if name is None else name, self.kind)
        if name in self._builtins:
            raise FnbackpropError(
                f"{name!r} is a built-in {self.kind}: give yours another name "
                f"(built-in names: {', '.join(self._builtins)})"
            )
        old = self._registered.get(name)
        if old is not None and not replace and not _same_definition(old, obj):
            raise FnbackpropError(
                f"a different {self.kind} is already registered as {name!r} "
                f"({_where(old)}); pass replace=True to replace it"
            )
        self._registered[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Forget a registered name (built-ins stay)."""
        if name in self._builtins:
            raise FnbackpropError(f"{name!r} is a built-in {self.kind} and cannot be unregistered")
        self._registered.pop(name, None)

    def get(self, spec: Any) -> T:
        """The object `spec` names: a name, an import path, or an object (checked, returned)."""
        if not isinstance(spec, str):
            return self._check(spec)
        if is_import_path(spec):
            found = import_object(spec, self.kind, fits=self._fits, plural=self.plural)
            return self._check_imported(found, spec)
        if spec in self._builtins:
            return self._builtins[spec]
        if spec in self._registered:
            return self._registered[spec]
        found = self._from_entry_points(spec)
        if found is not None:
            return found
        raise FnbackpropError(self.unknown(spec))

    def unknown(self, spec: str) -> str:
        """The message for a name that names nothing: the valid names and the nearest one."""
        names = self.names()
        return (
            f"unknown {self.kind} {spec!r}{did_you_mean(spec, names)}; valid names: "
            f"{', '.join(names)}; or your own as 'package.module:Name'"
        )

    def _fits(self, obj: Any) -> bool:
        """Whether `obj` passes this registry's check (a name a module offers, for messages)."""
        try:
            self._check(obj)
        except FnbackpropError:
            return False
        return True

    def _check_imported(self, obj: Any, spec: str) -> T:
        try:
            return self._check(obj)
        except FnbackpropError as err:
            raise FnbackpropError(f"{self.kind} {spec!r}: {err}") from None

    def _from_entry_points(self, name: str) -> T | None:
        try:
            points = importlib.metadata.entry_points(group=self.entry_point_group, name=name)
        except Exception:  # pragma: no cover - a broken installation's metadata
            return None
        for point in points:
            try:
                obj = point.load()
            except Exception as err:
                raise FnbackpropError(
                    f"{self.kind} {name!r}: the entry point {point.value!r} "
                    f"({self.entry_point_group}) failed to load: {type(err).__name__}: {err}"
                ) from None
            return self.register(self._check_imported(obj, point.value), name)
        return None


def _same_definition(a: Any, b: Any) -> bool:
    if a is b or a == b:
        return True
    ta, tb = type(a), type(b)
    return (ta.__module__, ta.__qualname__) == (tb.__module__, tb.__qualname__)


def _where(obj: Any) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    if t.__name__ == "function" and hasattr(obj, "__qualname__"):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{t.__module__}.{t.__qualname__}"
