"""Math with no protocol knowledge: groups, polynomials, secret sharing, encodings."""
