"""raf_db: RAF-DB (basic) from the user's copy. Importing registers the builder."""

from data_builders.raf_db.raf_db_dataset_builder import Builder

__all__ = ["Builder"]
