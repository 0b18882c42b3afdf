"""Unit tests of the one preprocessing definition (cleaning, tokenization, lookup)."""

import numpy as np
import pytest
import tensorflow as tf

from schemas import names
from textprep import preprocessing


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Great film.<br /><br />Loved it", "great film. loved it"),
        ("Tom &amp; Jerry &lt;3 &quot;wow&quot; &#39;ok&#39; &#x41;", "tom & jerry <3 \"wow\" 'ok' a"),
        ("caf&eacute; &nbsp; &hellip;", "café ..."),
        ("a < b and c > d", "a < b and c > d"),  # not tags: kept
        ("ﬁne ＦＵＬＬＷＩＤＴＨ ５", "fine fullwidth 5"),  # NFKC
        ("tab\there\nnewline\x00nul", "tab here newline nul"),  # control characters
        ("zero\u200bwidth and rtl\u200fmark", "zero width and rtlmark"),
        ("  many    spaces\u3000here  ", "many spaces here"),
        ("unknown &bogus; entity &#0;", "unknown &bogus; entity \ufffd"),
        ("emoji 😀 stays", "emoji 😀 stays"),
        ("<i></i><br />", ""),
    ],
)
def test_clean(raw, cleaned):
    assert preprocessing.clean_batch([raw]) == [cleaned]


def test_clean_matches_html_unescape_on_numeric_entities():
    import html

    raw = "&#8217;&#x2019;&#233;&#x1F600;&#128512;"
    assert preprocessing.clean_batch([raw], preprocessing.TextSpec(lowercase=False)) == [html.unescape(raw)]


def test_lowercase_is_an_option():
    assert preprocessing.clean_batch(["Hello World"], preprocessing.TextSpec(lowercase=False)) == ["Hello World"]
    assert preprocessing.clean_batch(["Hello ÉCOLE"], preprocessing.TextSpec(lowercase=True)) == ["hello école"]


def test_invalid_utf8_is_repaired_not_fatal():
    cleaned = preprocessing.TextPreprocessor().clean(tf.constant([b"bad \xff byte"]))
    assert cleaned.numpy()[0].decode("utf-8") == "bad \ufffd byte"


def test_tokenize_words_punctuation_and_apostrophes():
    tokens = preprocessing.tokenize_batch(["don't stop! rock'n'roll 'quoted' 10/10 😀"])
    assert tokens == [["don't", "stop", "!", "rock'n'roll", "'", "quoted", "'", "10", "/", "10", "😀"]]


def test_tokenize_equals_regex_split_with_the_token_pattern():
    """The fast marking pattern cuts exactly where the definition (TOKEN_PATTERN) does."""
    import tensorflow_text as tf_text

    texts = [
        "don't 'quoted' a''b rock'n'roll ab' 'ab x'y'z __init__ 3.14 émigré's naïve-ish ''",
        "",
        "'",
        "a'",
        "'a",
        "a'b'",
        "l'été c'est",
        "e\u0301't",
        "!!!...",
        "a\tb\nc  d",
        "😀😀x😀",
        "it's.' ok",
    ]
    pattern = preprocessing.TOKEN_PATTERN  # the definition the fast path must equal
    pieces = tf_text.regex_split(tf.constant(texts), pattern, pattern).to_list()
    expected = [[p.decode() for p in row if p.strip()] for row in pieces]
    assert preprocessing.tokenize_batch(texts) == expected


def test_clean_decodes_references_only_where_they_are_and_keeps_batch_order():
    """Texts with and without character references in one batch: each cleaned as on its own."""
    texts = ["no refs here", "Tom &amp; Jerry", "", "x &#39;y&#39;\nz", "plain again", "&lt;&gt;"]
    alone = [preprocessing.clean_batch([text])[0] for text in texts]
    assert preprocessing.clean_batch(texts) == alone
    assert alone == ["no refs here", "tom & jerry", "", "x 'y' z", "plain again", "<>"]
    assert preprocessing.clean_batch(["a", "b"]) == ["a", "b"]  # no reference in the whole batch


def test_count_tokens_batch():
    assert preprocessing.count_tokens_batch(["a b a", "b c"]) == {"a": 2, "b": 2, "c": 1}


def test_token_counts_as_bytes_are_the_counts_as_str_encoded():
    texts = ["naïve café, naïve!", "日本 映画 日本", "", "a b a"]
    expected = {"naïve": 2, "café": 1, ",": 1, "!": 1, "日本": 2, "映画": 1, "a": 2, "b": 1}
    as_bytes = preprocessing.count_token_bytes_batch(texts)
    assert as_bytes == {token.encode("utf-8"): count for token, count in expected.items()}
    assert all(type(count) is int for count in as_bytes.values())
    assert preprocessing.count_tokens_batch(texts) == expected
    assert preprocessing.count_token_bytes_batch([]) == {}


def test_lookup_reserved_ids_and_oov():
    vocabulary = [*names.RESERVED_TOKENS, "good", "film"]
    lookup = preprocessing.CompiledLookup(vocabulary)
    assert lookup(["good film", "bad film", ""]) == [[2, 3], [names.OOV_ID, 3], []]


def test_vocabulary_of_reserved_tokens_only_maps_everything_to_oov():
    assert preprocessing.CompiledLookup(list(names.RESERVED_TOKENS))(["any words"]) == [[names.OOV_ID, names.OOV_ID]]


def test_vocabulary_must_start_with_reserved_tokens():
    with pytest.raises(ValueError, match="reserved"):
        preprocessing.TextPreprocessor(["good", "film"])
    with pytest.raises(ValueError, match="repeated"):
        preprocessing.TextPreprocessor([*names.RESERVED_TOKENS, "a", "a"])


def test_truncate_head_and_tail_on_dense_and_ragged():
    dense = tf.constant([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(preprocessing.truncate_ids(dense, 3, "head"), [1, 2, 3])
    np.testing.assert_array_equal(preprocessing.truncate_ids(dense, 3, "tail"), [3, 4, 5])
    ragged = tf.ragged.constant([[1, 2, 3, 4], [5]])
    assert preprocessing.truncate_ids(ragged, 2, "head").to_list() == [[1, 2], [5]]
    assert preprocessing.truncate_ids(ragged, 2, "tail").to_list() == [[3, 4], [5]]
    with pytest.raises(ValueError):
        preprocessing.truncate_ids(dense, 2, "middle")


def test_truncate_head_tail_keeps_first_quarter_and_last_three_quarters():
    dense = tf.range(1, 11)  # 10 tokens, budget 8: first 2 + last 6
    np.testing.assert_array_equal(preprocessing.truncate_ids(dense, 8, "head_tail"), [1, 2, 5, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(preprocessing.truncate_ids(dense[:7], 8, "head_tail"), [1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(preprocessing.truncate_ids(dense, 3, "head_tail"), [8, 9, 10])  # head = 3 // 4 = 0
    ragged = tf.ragged.constant([list(range(1, 11)), [5], [], [1, 2, 3]])
    assert preprocessing.truncate_ids(ragged, 8, "head_tail").to_list() == [
        [1, 2, 5, 6, 7, 8, 9, 10],
        [5],
        [],
        [1, 2, 3],
    ]
    # tf.data maps it inside a graph: the same result as eager.
    mapped = tf.data.Dataset.from_tensors(dense).map(lambda ids: preprocessing.truncate_ids(ids, 8, "head_tail"))
    np.testing.assert_array_equal(next(iter(mapped)), [1, 2, 5, 6, 7, 8, 9, 10])


@pytest.mark.parametrize(
    ("whitespace", "raw", "cleaned"),
    [
        ("collapse", "Line one\r\n\r\nLine  two\n", "line one line two"),
        ("lines", "Line one\r\n\r\nLine \t two\n", "line one\n\nline two"),
        ("keep", "Line one\r\n\r\nLine \t two\n", "line one\n\nline   two\n"),
    ],
)
def test_whitespace_modes(whitespace, raw, cleaned):
    spec = preprocessing.TextSpec(whitespace=whitespace, strip_html=False)
    assert preprocessing.clean_batch([raw], spec) == [cleaned]


def test_character_tokens_and_detokenize_are_inverse():
    spec = preprocessing.TextSpec(
        lowercase=False,
        strip_html=False,
        whitespace="keep",
        tokenizer="char",
        reserved_tokens=names.GENERATIVE_RESERVED_TOKENS,
    )
    text = "To be,\n  or NOT — 😀"
    vocabulary = list(names.GENERATIVE_RESERVED_TOKENS) + sorted(set(text))
    preprocessor = preprocessing.TextPreprocessor(vocabulary, spec=spec)
    ids = preprocessor.ids(tf.constant([text]))
    assert ids.to_list()[0] == [vocabulary.index(ch) for ch in text]
    with_specials = tf.ragged.constant([[names.EOS_ID, *ids.to_list()[0], names.PAD_ID, names.EOS_ID]])
    assert preprocessor.detokenize(with_specials).numpy()[0].decode() == text
