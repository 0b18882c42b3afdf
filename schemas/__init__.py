"""Names and contracts shared by the pipelines and the model.

Everything a stage hands to the next one is named here once: feature keys,
special tokens, label sets, the TFRecord feature spec, the Arrow schemas of
scored and quarantined output, and quarantine reasons.
"""
