"""Quarantine reasons: every record that does not reach an output gets one.

A reason is a short stable string (analysts group by it); `detail` on the
quarantine record says what exactly was wrong with that row.
"""

UNREADABLE_INPUT = "unreadable_input"  # a file or row the reader could not parse
MALFORMED_ROW = "malformed_row"  # CSV row with the wrong column count, JSONL line not a JSON object
UNPARSEABLE_FILENAME = "unparseable_filename"  # aclImdb file name not ID_RATING.txt
UNDECODABLE_TEXT = "undecodable_text"  # bytes not valid in the input encoding
MISSING_TEXT = "missing_text"  # no text field / text is null
NON_STRING_TEXT = "non_string_text"  # text field holds a number, list, object, ...
BINARY_CONTENT = "binary_content"  # NUL bytes and many control bytes: not text
EMPTY_TEXT = "empty_text"  # empty or whitespace-only raw text
TEXT_TOO_LONG = "text_too_long"  # raw text longer than --max_chars
EMPTY_AFTER_CLEANING = "empty_after_cleaning"  # only markup/control characters
MISSING_LABEL = "missing_label"  # labelled split without a label
UNKNOWN_LABEL = "unknown_label"  # label not in schemas.names.LABEL_ALIASES
DUPLICATE_ID = "duplicate_id"  # a second record with an id already seen
DUPLICATE_TEXT = "duplicate_text"  # same cleaned text as a record that was kept
DUPLICATE_OF_TEST = "duplicate_of_test"  # train/unsup copy of a test text (leakage)
PROMPT_OUT_OF_VOCABULARY = "prompt_out_of_vocabulary"  # generation: every prompt token unknown to the model
# Translation pairs
EMPTY_SOURCE = "empty_source"  # the source side is empty or whitespace-only
EMPTY_TARGET = "empty_target"  # the target side is empty or whitespace-only
SIDE_TOO_LONG = "side_too_long"  # a side longer than --max_chars characters
LENGTH_RATIO_OUTLIER = "length_ratio_outlier"  # one side more than --max_length_ratio times the other
SOURCE_EQUALS_TARGET = "source_equals_target"  # untranslated copy
DUPLICATE_PAIR = "duplicate_pair"  # same (source, target) as a pair that was kept

ALL = (
    UNREADABLE_INPUT,
    MALFORMED_ROW,
    UNPARSEABLE_FILENAME,
    UNDECODABLE_TEXT,
    MISSING_TEXT,
    NON_STRING_TEXT,
    BINARY_CONTENT,
    EMPTY_TEXT,
    TEXT_TOO_LONG,
    EMPTY_AFTER_CLEANING,
    MISSING_LABEL,
    UNKNOWN_LABEL,
    DUPLICATE_ID,
    DUPLICATE_TEXT,
    DUPLICATE_OF_TEST,
    PROMPT_OUT_OF_VOCABULARY,
    EMPTY_SOURCE,
    EMPTY_TARGET,
    SIDE_TOO_LONG,
    LENGTH_RATIO_OUTLIER,
    SOURCE_EQUALS_TARGET,
    DUPLICATE_PAIR,
)

# Repairs: records that were fixed and kept, counted in the manifest under "repaired".
REPAIRED_FALLBACK_ENCODING = "decoded_with_fallback_encoding"
REPAIRED_NUL_BYTES = "nul_bytes_removed"
REPAIRED_CONTROL_CHARACTERS = "control_or_invisible_characters_removed"
