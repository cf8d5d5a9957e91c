"""The catalog: topics and stored articles as the rest of the engine reads them."""
