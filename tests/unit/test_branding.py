import pytest

from oauth_server.routes import on_accent


@pytest.mark.parametrize(("accent", "text"), [
    ("#7b2cbf", "#ffffff"), ("#1f5fbf", "#ffffff"), ("#000000", "#ffffff"),
    ("#ffd700", "#000000"), ("#ffffff", "#000000"), ("#00ff00", "#000000"),
])
def test_button_text_contrasts_with_the_accent_colour(accent, text):
    assert on_accent(accent) == text
