"""Makes pytest put the repository root on sys.path, so tests import mpcnode uninstalled."""
