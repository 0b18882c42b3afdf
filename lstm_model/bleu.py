"""Corpus BLEU and chrF with sacreBLEU (Post 2018), the way machine-translation papers report them.

Hypotheses are the model's detokenized output, references the dataset's cleaned `target_text`;
BLEU uses sacreBLEU's defaults (13a tokenization, exponential smoothing, mixed case: both sides are
already lowercased by the dataset's TextSpec when it lowercases), and every figure carries its
signature (e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``) so it can be compared
with published numbers. Scores are 0-100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """{"bleu", "chrf" (0-100, rounded to 2 decimals), "bleu_signature", "chrf_signature", "sentences"}."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hypotheses, references = list(hypotheses), list(references)
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(float(bleu_score.score), 2),
        "chrf": round(float(chrf_score.score), 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


def sentence_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Smoothed sentence-level BLEU (sacreBLEU's effective-order variant), 0-100, to rank examples."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    return [float(bleu.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references, strict=True)]
