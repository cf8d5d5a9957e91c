"""Running the engine as a service: the log lines the long-running commands write to stdout
(`logs.py`), and the liveness answer of `digest scheduler` and `digest worker`
(`liveness.py`)."""
