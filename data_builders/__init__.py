"""TFDS builders for micro- and macro-expression corpora (array_record, no TensorFlow).

Importing a builder's module registers it with TFDS under its name; import
each module under one name only (TFDS refuses a second registration).
"""

import importlib

# Dataset name -> module that registers its builder.
BUILDER_MODULES = {
    "synthetic_me": "data_builders.synthetic_me",
    "casme2": "data_builders.casme2",
    "samm": "data_builders.samm",
    "smic": "data_builders.smic",
    "casme": "data_builders.casme",
    "casme3": "data_builders.casme3",
    "fourd_me": "data_builders.fourd_me",
    "mmew": "data_builders.mmew",
    "dfme": "data_builders.dfme",
    # Macro-expression sets for pre-training.
    "ck_plus": "data_builders.ck_plus",
    "oulu_casia": "data_builders.oulu_casia",
    "jaffe": "data_builders.jaffe",
    "mug": "data_builders.mug",
    "raf_db": "data_builders.raf_db",
    "fer2013": "data_builders.fer2013",
}


def import_builder(name: str):
    """Register the builder of `name` ('dataset' or 'dataset/config') and return its module."""
    dataset = name.split("/")[0]
    if dataset not in BUILDER_MODULES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(BUILDER_MODULES)}")
    return importlib.import_module(BUILDER_MODULES[dataset])
