"""adv_pipeline: advantage labelling and advantage-conditioned imitation learning."""

__version__ = "0.1.0"
