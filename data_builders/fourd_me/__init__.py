"""fourd_me: 4DME from the user's licensed copy. Importing registers the builder."""

from data_builders.fourd_me.fourd_me_dataset_builder import Builder

__all__ = ["Builder"]
