"""budget-sync's spoke side: the code that ships inside template-spoke.yaml.

``update_budget`` is the Automation document's ``aws:executeScript`` step. The template
holds an inline copy of the file (a test proves the two are identical), so that the
script is also a file that the tests run and the linters see.
"""
