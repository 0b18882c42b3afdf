"""Feature keys, special tokens, labels, splits and file names.

Imported by the Beam pipelines and the Keras model alike, so that a name is
decided once (the TFX taxi template's `features.py` idea).
"""

from __future__ import annotations

# ---------------------------------------------------------------- tf.Example keys
FEATURE_TOKEN_IDS = "token_ids"  # int64 list, vocabulary ids of the cleaned text
FEATURE_LABEL = "label"  # int64 scalar, index into LABELS, UNLABELED for none
FEATURE_ID = "id"  # bytes scalar, stable record id (traceable to the raw input)
FEATURE_LENGTH = "length"  # int64 scalar, number of token ids (before truncation)
# Translation records (a sentence pair): ids without [BOS]/[EOS] (the model adds them), lengths in tokens,
# and the cleaned texts themselves (validation BLEU compares detokenized output with target_text).
FEATURE_SOURCE_IDS = "source_ids"  # int64 list, ids in the source vocabulary
FEATURE_TARGET_IDS = "target_ids"  # int64 list, ids in the target vocabulary
FEATURE_SOURCE_LENGTH = "source_length"  # int64 scalar
FEATURE_TARGET_LENGTH = "target_length"  # int64 scalar
FEATURE_SOURCE_TEXT = "source_text"  # bytes scalar, cleaned source sentence
FEATURE_TARGET_TEXT = "target_text"  # bytes scalar, cleaned target sentence (the reference)

# ---------------------------------------------------------------- vocabulary
PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
BOS_TOKEN = "[BOS]"  # start of a sequence (a decoder's first input)
EOS_TOKEN = "[EOS]"  # end of a document or sentence: a language model learns to stop on it
PAD_ID = 0  # padding; the embedding masks it (mask_zero=True)
OOV_ID = 1  # every token not in the vocabulary
BOS_ID = 2  # in vocabularies that reserve it (GENERATIVE_RESERVED_TOKENS)
EOS_ID = 3
RESERVED_TOKENS = (PAD_TOKEN, OOV_TOKEN)  # ids 0 and 1 of every vocabulary, in this order (the classifier's)
GENERATIVE_RESERVED_TOKENS = (PAD_TOKEN, OOV_TOKEN, BOS_TOKEN, EOS_TOKEN)  # language models and translation
# Tokenizers (textprep.preprocessing): words and punctuation, Unicode characters, WordPiece subwords.
TOKENIZERS = ("word", "char", "wordpiece")
WORDPIECE_SUFFIX = "##"  # marks a WordPiece that continues a word
# Whitespace handling of cleaning: "collapse" (every run -> one space, as a classifier wants), "lines" (runs of
# spaces/tabs -> one space, line breaks kept), "keep" (only \r\n and \r -> \n: a character LM sees the layout).
WHITESPACE_MODES = ("collapse", "lines", "keep")
# How a text longer than the token budget is cut, in training and serving alike
# (textprep.preprocessing.truncate_ids): first tokens, last tokens, or first 1/4 + last 3/4.
TRUNCATE_MODES = ("head", "tail", "head_tail")

# ---------------------------------------------------------------- tasks
# What a dataset, model and output directory is for; the manifest's "task" field. Each task has one module
# pipelines/tasks/TASK.py (fields, checks, features, output rows) and lstm_model/tasks/TASK.py (model, training,
# export, metrics); the shared code asks the task and never branches on its name.
TASK_CLASSIFICATION = "classification"
TASK_LANGUAGE_MODEL = "language_model"
TASK_TRANSLATION = "translation"

# ---------------------------------------------------------------- labels
# Sentiment classification: index in this tuple is the label id.
LABELS = ("neg", "pos")
UNLABELED = -1  # label id of texts without a label (aclImdb `unsup`)
# Spellings accepted for each label in raw inputs (compared lowercased, stripped).
LABEL_ALIASES = {
    "neg": 0,
    "negative": 0,
    "0": 0,
    "pos": 1,
    "positive": 1,
    "1": 1,
}
UNLABELED_FOLDER = "unsup"  # aclImdb folder of unlabeled reviews

# ---------------------------------------------------------------- splits
SPLIT_TRAIN = "train"
SPLIT_VALIDATION = "validation"
SPLIT_TEST = "test"
SPLIT_UNSUP = "unsup"  # unlabeled texts from the training side (LM pretraining)
SPLITS = (SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST, SPLIT_UNSUP)
# Dedupe keeps, of identical texts, the copy in the split listed first here, so a
# text present in train and test stays only in test (no leakage).
DEDUPE_SPLIT_PRIORITY = (SPLIT_TEST, SPLIT_VALIDATION, SPLIT_TRAIN, SPLIT_UNSUP)

# ---------------------------------------------------------------- dataset directory
MANIFEST_FILE = "manifest.json"
VOCAB_FILE = "vocab.tsv"  # one `token<TAB>count` per line; line number = id
# Translation: one vocabulary per side, same format (a joint vocabulary is written to both files).
SOURCE_VOCAB_FILE = "vocab.source.tsv"
TARGET_VOCAB_FILE = "vocab.target.tsv"
INPUTS_FILE = "inputs.tsv"  # `path<TAB>sha256<TAB>bytes` of every raw input file
QUARANTINE_DIR = "quarantine"
TFRECORD_SUFFIX = ".tfrecord.gz"

# ---------------------------------------------------------------- model directory
MODEL_CONFIG_FILE = "config.json"
MODEL_INFO_FILE = "model_info.json"
MODEL_METRICS_FILE = "metrics.json"
MODEL_HISTORY_FILE = "history.json"
MODEL_BLESSING_FILE = "blessing.json"  # blessed or not, and why (lstm_model.bless); scoring checks it
MODEL_REPORT_DIR = "report"  # evaluation report: index.html + PNGs (lstm_model.report)
MODEL_EXPORT_DIR = "export"  # SavedModel: raw strings in, probabilities out
SERVING_SIGNATURE = "serving_default"
PREPROCESS_SIGNATURE = "preprocess"
GENERATE_SIGNATURE = "generate"  # language models: prompts -> generated text
LOG_LIKELIHOOD_SIGNATURE = "log_likelihood"  # language models: text -> nats per token, bits per char
TRANSLATE_SIGNATURE = "translate"  # translation: source sentences -> translations (greedy or beam search)

# ---------------------------------------------------------------- scored / generated directory
SCORED_DIR = "scored"
GENERATED_DIR = "generated"
TRANSLATED_DIR = "translated"
