"""samm: SAMM from the user's licensed copy. Importing registers the builder."""

from data_builders.samm.samm_dataset_builder import Builder

__all__ = ["Builder"]
