"""The one family of errors a user can cause.

Every mistake a user can make (a bad shape, an unknown name, a broken file, a wrong config key)
raises a subclass of `FnbackpropError`. It is a `ValueError`, so `except ValueError` catches it,
and the CLI turns it into one line on stderr and exit code 2.
"""


class FnbackpropError(ValueError):
    """A user error: the message is one line that names the problem and the valid choices."""


class ConfigError(FnbackpropError):
    """A config file or `--set` override is wrong."""


class DataError(FnbackpropError):
    """A data file is missing, corrupt or hostile."""


class CheckpointError(FnbackpropError):
    """A checkpoint is missing, corrupt or belongs to another network."""


class ShapeError(FnbackpropError):
    """An array passed to a public function has the wrong shape or dtype."""
