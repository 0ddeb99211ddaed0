"""TimmyBot core: the one package shared by the Lambda functions and the voice task."""

__version__ = "0.1.0"
