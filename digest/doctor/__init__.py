"""`digest doctor`: what stands between this installation and its first send, each finding a
`Check` (ok, warn or fail) with the fix; `runner.diagnose` runs them all."""
