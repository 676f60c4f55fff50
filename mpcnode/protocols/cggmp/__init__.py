"""CGGMP24 sessions (sans-I/O): auxiliary-info generation."""

from mpcnode.protocols.cggmp.aux_info import AuxInfo, AuxInfoPublic, CggmpAuxInfoSession

__all__ = ["AuxInfo", "AuxInfoPublic", "CggmpAuxInfoSession"]
