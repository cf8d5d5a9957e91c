"""Preview: what one reader, one topic mix or one edition would get, and what a delivery held."""
