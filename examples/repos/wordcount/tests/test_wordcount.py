import unittest

from wordcount import count_words


class CountWordsTest(unittest.TestCase):
    def test_single_spaces(self):
        self.assertEqual(count_words("one two three"), 3)

    def test_any_whitespace(self):
        self.assertEqual(count_words("one  two\nthree\tfour"), 4)

    def test_empty(self):
        self.assertEqual(count_words(""), 0)
        self.assertEqual(count_words("   "), 0)
