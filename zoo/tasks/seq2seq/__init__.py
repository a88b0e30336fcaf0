"""The sequence-to-sequence machinery translation and parsing share (not a task itself)."""
