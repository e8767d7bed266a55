"""The zoo and its analysis engine (no web tier). Importing the package
registers the catalog's entries (timm's habit: the registry is a leaf, the
entries register themselves)."""

from models import catalog as _catalog  # noqa: F401  (registers the zoo)
