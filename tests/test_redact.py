"""engine.redact: the key is masked wherever a server puts it, and ordinary words survive."""

from __future__ import annotations

import base64
import binascii
import urllib.parse

import pytest

from looks.redact import MASK, MIN_SUBSTRING_LENGTH, Redactor

LONG = "sk-live-0123456789abcdef"


def test_a_long_key_is_masked_everywhere_even_inside_words() -> None:
    r = Redactor(LONG)
    assert r.text(f"bad key {LONG}.") == f"bad key {MASK}."
    assert r.text(f"Bearer{LONG}x") == f"Bearer{MASK}x"
    assert r.text(f"{LONG}{LONG}") == MASK * 2


def test_the_percent_encoded_key_is_masked_too() -> None:
    key = "sk/live+key=0123456789"
    encoded = urllib.parse.quote(key, safe="")
    assert encoded != key
    assert Redactor(key).text(f"https://cdn/x?k={encoded}&a=1") == f"https://cdn/x?k={MASK}&a=1"


def test_the_key_percent_encoded_as_a_path_or_a_form_is_masked_too() -> None:
    # quote() keeps "/" by default, quote_plus() turns " " into "+": partial encodings.
    key = "sk+Live/ABCdef12345=="
    for encoded in (urllib.parse.quote(key), urllib.parse.quote_plus(key, safe="/")):
        assert encoded not in (key, urllib.parse.quote(key, safe=""))
        assert Redactor(key).text(f"bad key {encoded}; request req-{encoded}") == (
            f"bad key {MASK}; request req-{MASK}"
        )


def test_an_answer_nested_too_deep_is_no_json_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError, match="nested too deeply"):
        Redactor(LONG).loads(deep)


def test_a_short_key_is_masked_only_where_it_stands_alone() -> None:
    r = Redactor("c")
    assert r.text("not enough credits") == "not enough credits"  # was "***redits"
    assert r.text("key c was refused") == f"key {MASK} was refused"
    assert r.text("key=c;") == f"key={MASK};"
    short = Redactor("abc123")
    assert len("abc123") < MIN_SUBSTRING_LENGTH
    assert short.text("xabc123 abc123y abc123") == f"xabc123 abc123y {MASK}"


def test_json_answers_are_masked_in_every_string_and_key() -> None:
    r = Redactor(LONG)
    answer = {
        "data": {
            "name": f"look of {LONG}",
            LONG: [1, True, None, f"{LONG}!", {"nested": LONG}],
        }
    }
    assert r.json(answer) == {
        "data": {"name": f"look of {MASK}", MASK: [1, True, None, f"{MASK}!", {"nested": MASK}]}
    }


def test_an_empty_secret_masks_nothing_and_the_redactor_hides_its_secret() -> None:
    assert Redactor("").text("anything at all") == "anything at all"
    assert LONG not in repr(Redactor(LONG))


def _longest_key_piece(key: str, text: str) -> int:
    """The longest run of the key's characters that decoding some base64 slice of `text`
    gives back (any alignment, standard or URL-safe alphabet)."""
    best = 0
    for alphabet in (text, text.replace("-", "+").replace("_", "/")):
        for start in range(len(alphabet)):
            for end in range(start + 4, len(alphabet) + 1, 4):
                try:
                    decoded = base64.b64decode(alphabet[start:end], validate=True)
                except (binascii.Error, ValueError):
                    continue
                for i in range(len(key)):
                    for j in range(i + best + 1, len(key) + 1):
                        if key[i:j].encode() in decoded:
                            best = j - i
                        else:
                            break
    return best


def test_the_base64_encoded_key_is_masked_at_every_alignment() -> None:
    key = "sk-live-0123456789abcdef"
    r = Redactor(key)
    for prefix in ("", "u", "us", "user:", "Basic "):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            blob = encode(f"{prefix}{key}.tail".encode()).decode()
            masked = r.text(f"auth={blob};")
            assert MASK in masked
            # At most a couple of the key's edge characters survive (they share a base64
            # character with their neighbours), never enough to matter.
            assert _longest_key_piece(key, masked) <= 2, (prefix, masked)


def test_a_json_answer_is_masked_however_its_text_spells_the_key() -> None:
    r = Redactor(LONG)
    escaped = "".join(f"\\u{ord(c):04x}" for c in LONG)  # JSON may spell any character so
    bodies = [
        f'{{"data": {{"message": "key {LONG}"}}}}',
        f'{{"data": {{"message": "key {escaped}"}}}}',
        f'{{"{escaped}": [1, "{LONG}"]}}',
    ]
    for body in bodies:
        assert LONG not in str(r.loads(body.encode()))
        assert MASK in str(r.loads(body.encode()))
    utf16 = f'{{"m": "{LONG}"}}'.encode("utf-16")  # not UTF-8: json still decodes it
    assert r.loads(utf16) == {"m": MASK}
    short = Redactor("c")
    assert short.loads(b'{"m": "not enough credits", "c": "c"}') == {
        "m": "not enough credits",
        MASK: MASK,
    }


def test_a_json_answer_without_the_key_decodes_unchanged() -> None:
    body = b'{"data": [{"id": "look_1", "name": "A \\"quoted\\" look", "n": 3}], "has_more": false}'
    assert Redactor(LONG).loads(body) == {
        "data": [{"id": "look_1", "name": 'A "quoted" look', "n": 3}],
        "has_more": False,
    }
    assert Redactor(LONG).loads(b'{"a": "plain"}') == {"a": "plain"}


def test_a_json_answer_in_utf16_or_utf32_without_a_bom_is_masked() -> None:
    # json.loads tells UTF-8, -16 and -32 apart by the first bytes, BOM or not; an ASCII
    # answer in UTF-16 or -32 is valid UTF-8 too (a NUL between every character), where
    # neither the key nor a backslash shows: only the text the parser read says the truth.
    r = Redactor(LONG)
    for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-8-sig"):
        body = f'{{"m": "{LONG}", "{LONG}": 1}}'.encode(encoding)
        assert r.loads(body) == {"m": MASK, MASK: 1}, encoding
    short = Redactor("c")
    assert short.loads('{"m": "c", "n": "credits"}'.encode("utf-16-le")) == {
        "m": MASK,
        "n": "credits",
    }


def test_the_key_is_masked_in_any_casing_so_a_lower_cased_code_cannot_restore_it() -> None:
    key = "sk-live-0123456789abcdef"
    r = Redactor(key)
    assert r.text(f"bad key {key.upper()}!") == f"bad key {MASK}!"
    # An error code echoing the key in capitals is lower-cased after masking (session,
    # client): unmasked, lower-casing would write the key itself.
    for body in (f'{{"error": {{"code": "{key.upper()}"}}}}', f'{{"c": "x{key.title()}"}}'):
        decoded = r.loads(body.encode())
        assert key not in str(decoded).lower()
        assert MASK in str(decoded)
    encoded = urllib.parse.quote("sk/live+key=0123456789", safe="")
    lower_hex = encoded.replace("%2F", "%2f").replace("%2B", "%2b").replace("%3D", "%3d")
    assert lower_hex != encoded
    assert Redactor("sk/live+key=0123456789").text(lower_hex) == MASK
    # Not ASCII: the case-insensitive search itself decides.
    assert MASK in str(r.loads(f'{{"m": "é {key.upper()}"}}'.encode()))
