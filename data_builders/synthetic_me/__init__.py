"""synthetic_me: procedural micro-expression corpus. Importing registers the builder."""

from data_builders.synthetic_me.synthetic_me_dataset_builder import Builder, SyntheticMEConfig

__all__ = ["Builder", "SyntheticMEConfig"]
