"""mug: MUG from the user's copy. Importing registers the builder."""

from data_builders.mug.mug_dataset_builder import Builder

__all__ = ["Builder"]
