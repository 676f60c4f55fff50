"""Zero-knowledge proofs of CGGMP21/24, one module per proof.

Every proof is non-interactive (Fiat-Shamir through `mpcnode.crypto.transcript`), and
every verifier raises `InvalidProof`: it first checks the size of every modulus and that
every received element is in range and a unit of its modulus, then the equations.
"""
