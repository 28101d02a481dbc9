"""SeqScore model export: train the fusion model on clickstream logs and export its ONNX bundle."""
__version__ = "0.1.0"
