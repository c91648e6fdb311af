"""casme: CASME I from the user's licensed copy. Importing registers the builder."""

from data_builders.casme.casme_dataset_builder import Builder

__all__ = ["Builder"]
