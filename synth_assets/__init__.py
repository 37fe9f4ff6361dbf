"""synth_assets: privacy-first synthetic data for staging and performance environments."""

__version__ = "0.1.0"
