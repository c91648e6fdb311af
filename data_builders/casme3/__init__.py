"""casme3: CAS(ME)^3 Part A from the user's licensed copy. Importing registers the builder."""

from data_builders.casme3.casme3_dataset_builder import Builder

__all__ = ["Builder"]
