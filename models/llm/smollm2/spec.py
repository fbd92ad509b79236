"""What this model is in the store: its name and version (the catalogue reads them from here)."""

NAME = "smollm2-135m-instruct"
VERSION = "1"
