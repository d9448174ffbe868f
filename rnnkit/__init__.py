"""rnnkit: recurrent and convolutional text classifiers with a staged command-line workflow."""

__version__ = "0.1.0"
