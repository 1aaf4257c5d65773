"""assistsync: keep Assistants API v1 assistants as code.

Manifests in YAML are planned against the live API and applied, with every id recorded in a lock
file. The package is laid out along the one-way data flow described in the README.
"""

__version__ = "0.1.0"
