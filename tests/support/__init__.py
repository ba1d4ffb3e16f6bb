"""Test helpers and fixtures shared across folders, one module per concern (fixtures are
registered once, by tests/conftest.py).
"""
