"""dfme: DFME from the user's licensed copy. Importing registers the builder."""

from data_builders.dfme.dfme_dataset_builder import Builder

__all__ = ["Builder"]
