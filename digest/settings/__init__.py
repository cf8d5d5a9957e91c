"""The parts `digest.config` composes its Settings from: field types and checks (`fields`),
where values come from (`sources`), and the sections that would crowd config.py
(`inbound`)."""
