"""`schemas.tfrecord.serialize_example` writes the same bytes as tf.train's own constructors and
parses back to the values it was given."""

import pytest

from schemas import tfrecord


def reference(features):
    """The plain way: Feature objects built from lists, then one Example (what the fast path replaced)."""
    import tensorflow as tf

    feature = {}
    for key, value in features.items():
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            values = [value] if isinstance(value, int) else value
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


CASES = [
    {"token_ids": [], "label": 0, "id": "", "length": 0},  # an empty list stays an int64_list feature
    {"token_ids": [5, 2**40, -7, 2**63 - 1, -(2**63)], "label": 1, "id": "train/pos/1", "length": 5},
    {"source_ids": [1, 2], "target_ids": [], "source_text": "ä\u2028x", "target_text": b"\xff\x00", "id": "p"},
    {"zeta": 1, "alpha": [0, 0, 0]},  # map fields come out sorted whatever the dict order
]


@pytest.mark.parametrize("features", CASES)
def test_same_bytes_as_tf_train_constructors(features):
    assert tfrecord.serialize_example(features) == reference(features)


def test_parses_back():
    import tensorflow as tf

    parsed = tf.io.parse_single_example(tfrecord.serialize_example(CASES[1]), tfrecord.feature_spec())
    assert parsed["token_ids"].numpy().tolist() == CASES[1]["token_ids"]
    assert (parsed["id"].numpy(), int(parsed["label"]), int(parsed["length"])) == (b"train/pos/1", 1, 5)
