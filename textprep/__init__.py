"""Text preprocessing shared by the Beam pipelines and the Keras model: cleaning, tokenizers, vocabularies.

Imports only `schemas` (and TensorFlow); `pipelines` and `lstm_model` both import it, never the reverse.
"""
