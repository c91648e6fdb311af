"""The one error type for mistakes a user makes (a bad config value, a config file that does
not run, a `--set` item the config cannot take): `mer-jax` prints its message on one line
and exits 2; anything else that is not a user error keeps its traceback (mer_jax/cli.py)."""


class UserError(ValueError):
    """A user's mistake, said in one line naming the key, file or row and what is allowed."""
