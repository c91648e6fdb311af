"""jaffe: JAFFE from the user's copy. Importing registers the builder."""

from data_builders.jaffe.jaffe_dataset_builder import Builder

__all__ = ["Builder"]
