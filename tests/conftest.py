"""Test-wide settings."""

import os

# grpcio's own C-core log lines (GOAWAY notices when a test stops a server) are noise here.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
