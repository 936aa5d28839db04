"""Label scores from a server's top log-probabilities (executors/runtimes/http_scores.py):
both reply shapes, first-token matching, and the rows it must leave to greedy decoding."""

from __future__ import annotations

import math

import pytest

from semql.executors.runtimes.http_scores import (
    chained_label_logprobs,
    label_logprobs,
    top_logprobs,
)


def test_both_reply_shapes():
    completions = {"logprobs": {"top_logprobs": [{" no": -0.4, " yes": -1.2}, {"x": -9.0}]}}
    chat = {
        "logprobs": {
            "content": [
                {
                    "token": " no",
                    "logprob": -0.4,
                    "top_logprobs": [
                        {"token": " no", "logprob": -0.4},
                        {"token": " yes", "logprob": -1.2},
                    ],
                }
            ]
        }
    }
    assert top_logprobs(completions) == top_logprobs(chat) == {" no": -0.4, " yes": -1.2}
    assert top_logprobs({"text": " no"}) is None  # a server without log-probabilities
    assert top_logprobs({"logprobs": None}) is None


def test_labels_by_their_first_token():
    top = {" No": -1.5, " no": -1.6, "\n": -2.0, " Yes": -2.3, " yes": -2.9, " ": -3.6}
    assert label_logprobs(top, ["yes", "no"]) == [-2.9, -1.6]  # exact case, not " Yes"
    # a label of several tokens: its listed first part, the longest that fits
    top = {" neg": -0.7, " ne": -3.0, " positive": -1.1}
    assert label_logprobs(top, ["positive", "negative"]) == [-1.1, -0.7]
    # a label not listed: the smallest listed log-probability (an upper bound)
    assert label_logprobs({" 4": -0.5, " 5": -1.0, " 3": -4.0}, ["1", "3", "5"]) == [
        -4.0,
        -4.0,
        -1.0,
    ]


def test_labels_opening_a_chat_turn():
    # the assistant's turn: no leading space, written or capitalised, their total
    top = {"The": -1.6, "I": -1.8, "No": -2.3, "Yes": -3.0, "no": -5.0, " yes": -0.1}
    yes, no = label_logprobs(top, ["yes", "no"], chat=True)
    assert yes == -3.0  # " yes" is not how a turn starts
    assert no == pytest.approx(math.log(math.exp(-2.3) + math.exp(-5.0)))
    assert label_logprobs({"Pos": -1.0, "Neg": -2.0}, ["positive", "negative"], True) == [
        -1.0,
        -2.0,
    ]
    assert label_logprobs(top, ["yes", "no"]) == [-0.1, -5.0]  # completions: " no" unlisted


@pytest.mark.parametrize(
    "top, labels",
    [
        ({" maybe": -0.1, "\n": -2.0}, ["yes", "no"]),  # no label listed
        ({" very": -0.3, " good": -2.0}, ["very good", "very bad"]),  # one token for two
        ({" ": -0.2}, ["yes", "no"]),  # a bare space starts every label: not a label
    ],
)
def test_rows_it_cannot_score(top, labels):
    assert label_logprobs(top, labels) is None


def _server(tops: dict[str, dict[str, float]]):
    """Top log-probabilities after each continuation of one prompt, and the continuations
    asked for (a server's replies, written out)."""
    asked: list[str] = []

    def top_after(written: str) -> dict[str, float] | None:
        asked.append(written)
        return tops.get(written)

    return top_after, asked


def test_labels_sharing_leading_tokens_are_scored_on_past_them():
    top_after, asked = _server(
        {
            "": {" very": -0.2, " neutral": -2.5, "\n": -3.0},
            " very": {" bad": -0.4, " good": -1.5, " very": -4.0},
        }
    )
    labels = ["very good", "very bad", "neutral"]
    assert chained_label_logprobs(top_after, labels) == [-0.2 - 1.5, -0.2 - 0.4, -2.5]
    assert asked == ["", " very"]
    # labels that part at once: one request
    top_after, asked = _server({"": {" yes": -0.3, " no": -1.4}})
    assert chained_label_logprobs(top_after, ["yes", "no"]) == [-0.3, -1.4]
    assert asked == [""]


@pytest.mark.parametrize(
    "tops, labels",
    [
        ({"": {" good": -0.1}}, ["good", "good enough"]),  # one label is the other's prefix
        ({"": {" very": -0.1}}, ["very good", "very bad"]),  # nothing listed past " very"
        ({"": {" maybe": -0.1}}, ["yes", "no"]),  # no label listed
        (
            {"": {" a": -0.1}, " a": {" a": -0.1}, " a a": {" a": -0.1}, " a a a": {" a": -0.1}},
            ["a a a a x", "a a a a y"],
        ),  # shared past MAX_CONTINUATIONS
    ],
)
def test_labels_the_chain_cannot_tell_apart(tops, labels):
    top_after, _ = _server(tops)
    assert chained_label_logprobs(top_after, labels) is None
