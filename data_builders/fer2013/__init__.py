"""fer2013: FER-2013 from the user's copy. Importing registers the builder."""

from data_builders.fer2013.fer2013_dataset_builder import Builder

__all__ = ["Builder"]
