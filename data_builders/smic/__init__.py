"""smic: SMIC (HS, VIS, NIR) from the user's licensed copy. Importing registers the builder."""

from data_builders.smic.smic_dataset_builder import Builder, SMICConfig

__all__ = ["Builder", "SMICConfig"]
