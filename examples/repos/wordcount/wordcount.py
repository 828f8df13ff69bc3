def count_words(text: str) -> int:
    """The number of words in `text` (words are separated by any whitespace)."""
    return len(text.split(" "))
