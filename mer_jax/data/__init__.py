"""Builder -> arrays: `load` reads a built dataset (or view) into one `Dataset`.

`loader` is the one reader of builder metadata and inputs; `describe` is
`mer-jax data describe` on top of it.
"""

from mer_jax.data.loader import (
    Dataset,
    default_data_dir,
    ignored_keys,
    load,
    prepare_builder,
    read_columns,
    stored_view,
)

__all__ = [
    "Dataset",
    "default_data_dir",
    "ignored_keys",
    "load",
    "prepare_builder",
    "read_columns",
    "stored_view",
]
