"""Builder -> arrays: `load` reads a built dataset (or view) into one `Dataset`.

`loader` is the one reader of builder metadata and inputs (`read_metadata`
reads the clips and their labels, no pixels; `load` adds the model inputs);
`describe` is `mer-jax data describe` on top of `read_metadata`.
"""

from mer_jax.data.loader import (
    Dataset,
    Metadata,
    default_data_dir,
    ignored_keys,
    load,
    prepare_builder,
    read_columns,
    read_metadata,
    stored_view,
)

__all__ = [
    "Dataset",
    "Metadata",
    "default_data_dir",
    "ignored_keys",
    "load",
    "prepare_builder",
    "read_columns",
    "read_metadata",
    "stored_view",
]
