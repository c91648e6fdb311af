"""mmew: MMEW (micro-expressions) from the user's licensed copy. Importing registers the builder."""

from data_builders.mmew.mmew_dataset_builder import Builder

__all__ = ["Builder"]
