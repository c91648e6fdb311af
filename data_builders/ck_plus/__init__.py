"""ck_plus: CK+ (extended Cohn-Kanade) from the user's copy. Importing registers the builder."""

from data_builders.ck_plus.ck_plus_dataset_builder import Builder

__all__ = ["Builder"]
