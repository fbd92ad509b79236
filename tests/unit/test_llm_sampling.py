"""The llm domain's token choice and its text stream, without a model."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from aimass.serving.domains import checkout_domains

checkout_domains()

from aimass_llm.sampling import choose, nucleus, penalised  # noqa: E402
from aimass_llm.text import TextStream  # noqa: E402

LOGITS = np.array([2.0, 1.0, 0.5, -1.0], dtype=np.float32)


def test_temperature_zero_is_the_likeliest_token_with_its_log_probability() -> None:
    picked = choose(LOGITS, temperature=0, top_p=1, rng=np.random.default_rng(0), logprobs=True, top_logprobs=2)
    expected = LOGITS.astype(np.float64) - np.log(np.exp(LOGITS.astype(np.float64)).sum())
    assert picked.token == 0 and picked.logprob is not None and np.isclose(picked.logprob, expected[0])
    assert [t for t, _ in picked.top] == [0, 1] and np.isclose(picked.top[1][1], expected[1])


def test_a_seeded_generator_repeats_its_draws() -> None:
    def draws(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return [choose(LOGITS, temperature=1.0, top_p=1, rng=rng).token for _ in range(30)]

    assert draws(5) == draws(5) and draws(5) != draws(6)


def test_top_p_keeps_the_fewest_likeliest_tokens_reaching_it() -> None:
    weights = np.array([0.15, 0.5, 0.05, 0.3]) * 2  # unnormalised
    kept, kept_weights = nucleus(weights, 0.7)
    assert kept.tolist() == [1, 3] and np.allclose(kept_weights, [1.0, 0.6])
    assert nucleus(weights, 0.1)[0].tolist() == [1]
    assert nucleus(weights, 1.0)[0].tolist() == [1, 3, 0, 2]
    rng = np.random.default_rng(1)
    assert {choose(LOGITS, temperature=1, top_p=0.5, rng=rng).token for _ in range(50)} == {0}


def test_a_wide_nucleus_is_found_past_the_first_candidates() -> None:
    # A flat distribution over 5,000 tokens: top_p 0.9 needs 4,500 of them, more than the first partition.
    weights = np.ones(5000, dtype=np.float32)
    weights[:10] = 2.0
    kept, _ = nucleus(weights, 0.9)
    assert len(kept) == int(np.ceil(0.9 * 5010)) - 10 and set(range(10)) <= set(kept.tolist())


def test_draws_follow_the_tempered_distribution() -> None:
    rng = np.random.default_rng(3)
    tokens = [choose(LOGITS, temperature=1.0, top_p=1, rng=rng).token for _ in range(4000)]
    expected = np.exp(LOGITS.astype(np.float64)) / np.exp(LOGITS.astype(np.float64)).sum()
    observed = np.bincount(tokens, minlength=4) / len(tokens)
    assert np.allclose(observed, expected, atol=0.03), (observed, expected)
    hot = [choose(LOGITS, temperature=1e-5, top_p=1, rng=rng).token for _ in range(50)]
    assert set(hot) == {0}  # a temperature barely above greedy's is greedy's, with no overflow


def test_penalties_lower_each_generated_tokens_logit_as_openai_defines_them() -> None:
    out = penalised(LOGITS, {0: 3, 2: 1}, presence=0.5, frequency=0.25)
    np.testing.assert_allclose(out, [2.0 - 0.75 - 0.5, 1.0, 0.5 - 0.25 - 0.5, -1.0])
    assert penalised(LOGITS, {0: 3}, presence=0, frequency=0) is LOGITS


def tokenizer() -> Tokenizer:
    words = ["the", "cat", "sat", "on", "mat", "end"]
    made = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="the"))
    made.pre_tokenizer = Whitespace()
    return made


def test_text_that_may_start_a_stop_sequence_is_held_until_it_cannot() -> None:
    stream = TextStream(tokenizer(), ("sat on", "mat"))
    assert stream.push(0) == "the"
    assert stream.push(1) == " cat"
    assert stream.push(2) == " "  # "sat" may begin "sat on"
    assert stream.push(3) == "" and stream.stopped  # "sat on": nothing of it is released
    assert stream.flush() == ""


def test_held_text_is_released_when_the_stop_sequence_does_not_follow() -> None:
    stream = TextStream(tokenizer(), ("sat on",))
    assert [stream.push(t) for t in (0, 2, 1)] == ["the", " ", "sat cat"]
    assert stream.push(2) == " " and stream.flush() == "sat"
