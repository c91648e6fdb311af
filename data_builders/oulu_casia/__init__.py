"""oulu_casia: Oulu-CASIA NIR&VIS from the user's copy. Importing registers the builder."""

from data_builders.oulu_casia.oulu_casia_dataset_builder import Builder, OuluConfig

__all__ = ["Builder", "OuluConfig"]
