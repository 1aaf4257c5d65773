"""The command line: the only place that prints, prompts or exits."""
