"""Sans-I/O protocol sessions. No gRPC, no trio, no storage, no clock in here."""
