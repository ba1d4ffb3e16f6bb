"""Lambda entry points named by template-management.yaml."""
