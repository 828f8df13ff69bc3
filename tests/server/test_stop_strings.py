"""Stop strings as the client sees them: the text ends before the first one, streamed or not."""

from __future__ import annotations

import random

from agentroll.server.stop_strings import StopFilter, cut


def test_cut_ends_before_the_earliest_stop_string():
    assert cut("abc END xyz", ["END"]) == "abc "
    assert cut("1, 2, 3", ["3", "2"]) == "1, "
    assert cut("no stop here", ["END"]) == "no stop here"
    assert cut("ENDING", ["END", ""]) == ""


def test_a_streamed_text_joins_to_the_cut_text_however_it_is_chunked():
    rng = random.Random(0)
    pieces = ["a", "b", "c", "E", "N", "D", "\n", " ", "🙂", "x", "Obs", "ervation:"]
    stop_sets = [["END"], ["ab", "abc", "bca"], ["\n\n", "Observation:"], ["aa"], ["🙂x"]]
    for _ in range(2000):
        stops = rng.choice(stop_sets)
        text = "".join(rng.choice(pieces) for _ in range(30))
        f, out, i = StopFilter(stops), [], 0
        while i < len(text):
            step = rng.randrange(1, 5)
            out.append(f.feed(text[i : i + step]))
            i += step
        out.append(f.flush())
        assert "".join(out) == cut(text, stops), (text, stops)


def test_text_that_might_begin_a_stop_string_is_held_until_it_cannot():
    f = StopFilter(["Observation:"])
    assert f.feed("Thought: add. Obs") == "Thought: add. "  # "Obs" may begin the stop string
    assert f.feed("erve the sum") == "Observe the sum"  # it did not
    assert f.feed(" Observation: 5") == " "
    assert f.feed("more") == "" and f.flush() == ""  # nothing after a stop string goes out
