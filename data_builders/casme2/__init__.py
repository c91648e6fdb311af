"""casme2: CASME II from the user's licensed copy. Importing registers the builder."""

from data_builders.casme2.casme2_dataset_builder import Builder

__all__ = ["Builder"]
