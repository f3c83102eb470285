"""The workflow engine's Alembic history, shipped as package data with the wizard."""
