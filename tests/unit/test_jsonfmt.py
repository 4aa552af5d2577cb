"""jsonfmt: byte-for-byte parity with Go's encoding/json (CONTRACT 1.4).

Expected outputs are what the real (Go) server produces: ``json.Unmarshal``
into ``map[string]interface{}`` (numbers become float64) or into a slice of
endpoint structs, then ``json.Marshal`` (HTML-safe escaping, map keys sorted,
floats formatted like ES6 ``Number.prototype.toString``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_registry.state.jsonfmt import (
    Endpoint,
    EndpointsError,
    dump_go,
    normalize_endpoints,
    normalize_object,
    parse_endpoints,
)

# --- numbers ----------------------------------------------------------------

NUMBERS = [
    ("1", "1"),
    ("1.0", "1"),
    ("100", "100"),
    ("1E2", "100"),
    ("1.5", "1.5"),
    ("-1.5", "-1.5"),
    ("0.1", "0.1"),
    ("0.30000000000000004", "0.30000000000000004"),
    ("12345.678", "12345.678"),
    ("-123.456e-3", "-0.123456"),
    ("123456789.123456789", "123456789.12345679"),
    ("0", "0"),
    ("0.0", "0"),
    ("-0", "-0"),
    ("-0.0", "-0"),
    ("0e10", "0"),
    # exponent form from 1e21 up
    ("1e20", "100000000000000000000"),
    ("1e21", "1e+21"),
    ("1E21", "1e+21"),
    ("1.5e21", "1.5e+21"),
    ("-1.5e21", "-1.5e+21"),
    ("999999999999999999999", "1e+21"),  # rounds up to 1e21 as a float64
    ("1e100", "1e+100"),
    ("1.7976931348623157e308", "1.7976931348623157e+308"),
    # ... and below 1e-6, with Go's one-digit negative exponents
    ("0.000001", "0.000001"),
    ("1e-6", "0.000001"),
    ("0.000123", "0.000123"),
    ("1e-7", "1e-7"),
    ("0.0000001", "1e-7"),
    ("1.5e-7", "1.5e-7"),
    ("-1e-7", "-1e-7"),
    ("1e-10", "1e-10"),
    ("1e-100", "1e-100"),
    ("5e-324", "5e-324"),
    ("1e-400", "0"),  # underflow is not an error in Go
    ("-1e-400", "-0"),
    # integers pass through float64: above 2^53 they lose precision ...
    ("9007199254740992", "9007199254740992"),
    ("9007199254740993", "9007199254740992"),
    ("18014398509481985", "18014398509481984"),
    ("123456789012345678", "123456789012345680"),
    # ... and are printed with the shortest round-trip digits, zero padded
    # (ES6 / Go: 2**60 prints as 1152921504606847000, not its exact value)
    ("1152921504606846976", "1152921504606847000"),
    ("-1152921504606846976", "-1152921504606847000"),
    ("9223372036854775807", "9223372036854776000"),
    ("123456789012345678901", "123456789012345680000"),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS, ids=[t for t, _ in NUMBERS])
def test_number_formatting(text: str, expected: str) -> None:
    assert normalize_object(f'{{"n":{text}}}') == f'{{"n":{expected}}}'
    assert normalize_object(f'{{"n":[{text}]}}') == f'{{"n":[{expected}]}}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (-(2**63), "-9223372036854775808"),
        (2**63 - 1, "9223372036854775807"),  # Go ints keep every digit
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (-0.0, "-0"),
        (2.0**60, "1152921504606847000"),
    ],
)
def test_dump_go_numbers(value: float, expected: str) -> None:
    assert dump_go(value) == expected


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1" + "0" * 400,  # overflows float64
        "01",
        "1.",
        ".5",
        "+1",
        "0x10",
        "1e",
        "- 1",
        "1_000",
    ],
)
def test_invalid_or_overflowing_numbers_drop_the_document(text: str) -> None:
    assert normalize_object(f'{{"n":{text}}}') == ""
    with pytest.raises(EndpointsError):
        parse_endpoints(f'[{{"priority":{text}}}]')


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_dump_go_refuses_non_finite_numbers(value: float) -> None:
    # Go's Marshal fails with UnsupportedValueError; "NaN" is not JSON.
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite|unsupported"):
        dump_go({"n": value})


# --- strings ------------------------------------------------------------------

STRINGS = [
    ("plain", '"plain"'),
    ("<a href>&", '"\\u003ca href\\u003e\\u0026"'),
    ("\u2028\u2029", '"\\u2028\\u2029"'),
    ("\u2027\u202a", '"\u2027\u202a"'),  # only 2028/2029 are escaped
    ('"', '"\\""'),
    ("\\", '"\\\\"'),
    ("/", '"/"'),  # Go does not escape the slash
    ("\n\r\t", '"\\n\\r\\t"'),
    ("\b\f", '"\\b\\f"'),  # Go >= 1.22 writes the short forms
    ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
    ("\x7f", '"\x7f"'),
    ("é漢字😀", '"é漢字😀"'),  # non-ASCII is emitted raw
    ("\ufeff\ue000", '"\ufeff\ue000"'),
    ("", '""'),
]


@pytest.mark.parametrize(("value", "expected"), STRINGS, ids=[e for _, e in STRINGS])
def test_string_escaping(value: str, expected: str) -> None:
    assert dump_go(value) == expected
    document = json.dumps({"k": value, value: 1}, ensure_ascii=True)
    key_first = value < "k"
    pairs = [f"{expected}:1", f'"k":{expected}']
    assert normalize_object(document) == "{" + ",".join(pairs if key_first else pairs[::-1]) + "}"


@pytest.mark.parametrize(
    ("escaped", "expected"),
    [
        ("\\ud800", "\ufffd"),
        ("\\udc00", "\ufffd"),
        ("\\ud800x", "\ufffdx"),
        ("\\ud800\\ud800\\udc00", "\ufffd\U00010000"),
        ("\\udc00\\ud800", "\ufffd\ufffd"),
        ("\\ud83d\\ude00", "😀"),
        ("a\\u0062c", "abc"),
        ("\\u003c", "\\u003c"),
    ],
)
def test_lone_surrogates_become_replacement_characters(escaped: str, expected: str) -> None:
    assert normalize_object(f'{{"v":"{escaped}"}}') == f'{{"v":"{expected}"}}'
    assert normalize_object(f'{{"{escaped}":1}}') == f'{{"{expected}":1}}'
    assert normalize_object(f'{{"v":["{escaped}"]}}') == f'{{"v":["{expected}"]}}'
    [endpoint] = parse_endpoints(f'[{{"host":"{escaped}","network":"{escaped}"}}]')
    assert endpoint.host == endpoint.network == json.loads(f'"{expected}"')
    # and the result is always encodable as UTF-8 (protobuf strings must be)
    normalize_object(f'{{"v":"{escaped}"}}').encode("utf-8")


def test_dump_go_cleans_lone_surrogates() -> None:
    assert dump_go("a\ud800b") == '"a\ufffdb"'
    assert dump_go({"\udfff": "x"}) == '{"\ufffd":"x"}'


# --- objects --------------------------------------------------------------------

OBJECTS = [
    ("{}", "{}"),
    (" \t\r\n{ } \n", "{}"),
    ('{"b":1,"a":2}', '{"a":2,"b":1}'),
    # byte-wise (= code point) order: uppercase, then "_", then lowercase, then non-ASCII
    (
        '{"z":1,"é":2,"a":3,"_":4,"A":5,"😀":6,"\ue000":7}',
        '{"A":5,"_":4,"a":3,"z":1,"é":2,"\ue000":7,"😀":6}',
    ),
    ('{"a":1,"a":2}', '{"a":2}'),  # the last duplicate wins
    ('{ "a" : [ 1 , 2 ] , "b" : { } }', '{"a":[1,2],"b":{}}'),
    ('{"x":{"b":[{"d":1,"c":2}],"a":null}}', '{"x":{"a":null,"b":[{"c":2,"d":1}]}}'),
    (
        '{"t":true,"f":false,"n":null,"s":"","l":[],"o":{}}',
        '{"f":false,"l":[],"n":null,"o":{},"s":"","t":true}',
    ),
    ('{"l":[[[]],[{}],[null,1,"x"]]}', '{"l":[[[]],[{}],[null,1,"x"]]}'),
    ('{"big":{"n":1e21,"m":[9007199254740993]}}', '{"big":{"m":[9007199254740992],"n":1e+21}}'),
]


@pytest.mark.parametrize(("text", "expected"), OBJECTS)
def test_objects_are_compact_and_sorted(text: str, expected: str) -> None:
    assert normalize_object(text) == expected


def test_sorting_is_recursive_and_arrays_keep_their_order() -> None:
    text = json.dumps({"k": [{"b": 1, "a": [3, 2, 1]}, {"d": {"y": 1, "x": 2}}]})
    assert normalize_object(text) == '{"k":[{"a":[3,2,1],"b":1},{"d":{"x":2,"y":1}}]}'


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "[{}]",
        "null",
        "1",
        '"text"',
        "true",
        "{",
        "{'a':1}",
        '{"a":1,}',
        '{"a" 1}',
        "{} {}",
        "{}x",
        "\ufeff{}",  # a BOM is not whitespace
        "\u00a0{}",
        "\f{}",
        '{"a":"\x01"}',  # raw control characters inside strings
        '{"a":"\t"}',
        '{"a":True}',
        '{"a":undefined}',
        "{a:1}",
        "{" + '"a":' * 1 + "[" * 10_001 + "]" * 10_001 + "}",  # deeper than Go's 10000 limit
    ],
)
def test_invalid_or_non_object_documents_become_empty(text: str) -> None:
    assert normalize_object(text) == ""


def test_deep_nesting_is_kept() -> None:
    depth = 500
    text = '{"a":' + "[" * depth + "]" * depth + "}"
    assert normalize_object(text) == text


def test_nesting_beyond_pythons_recursion_limit_is_dropped_as_invalid() -> None:
    # A documented difference: Go accepts 10000 levels; past Python's recursion
    # limit (about 1000) the fake treats the document as invalid, i.e. "".
    depth = 1_500
    assert normalize_object('{"a":' + "[" * depth + "]" * depth + "}") == ""


def test_dump_go_structures() -> None:
    assert dump_go(None) == "null"
    assert dump_go(True) == "true"
    assert dump_go(False) == "false"
    assert dump_go((1, "a", None)) == '[1,"a",null]'
    assert dump_go({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert dump_go({"b": 1, "a": 2}, sort_keys=False) == '{"b":1,"a":2}'
    assert dump_go({"o": {"b": 1, "a": 2}}, sort_keys=False) == '{"o":{"b":1,"a":2}}'
    with pytest.raises(TypeError):
        dump_go(object())
    with pytest.raises(TypeError):
        dump_go({1, 2})


# A JSON value generator for properties (finite floats, any text).
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _as_go(value: Any) -> Any:
    """What Go's map[string]interface{} holds: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_as_go(v) for v in value]
    return {k: _as_go(v) for k, v in value.items()}


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=5), st.booleans())
def test_normalize_object_properties(document: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only, indent=1 if ascii_only else None)
    out = normalize_object(text)
    assert out
    assert out.encode("utf-8")
    assert not {"<", ">", "&", "\u2028", "\u2029"} & set(out)
    assert json.loads(out, parse_int=float) == _as_go(document)
    assert normalize_object(out) == out  # idempotent: the server's output is a fixed point
    keys = list(json.loads(out, object_pairs_hook=lambda pairs: [k for k, _ in pairs]))
    assert keys == sorted(keys)


# --- endpoints ------------------------------------------------------------------

ACCEPTED_ENDPOINTS: list[tuple[str, tuple[Endpoint, ...]]] = [
    ("", ()),
    ("null", ()),
    ("[]", ()),
    (" [ ] ", ()),
    (
        '[{"host":"a","network":"internal","priority":1}]',
        (Endpoint("a", "internal", 1),),
    ),
    ('[{"host":"a"},{"host":"b"}]', (Endpoint("a"), Endpoint("b"))),  # order kept
    ("[{}]", (Endpoint(),)),
    ("[null]", (Endpoint(),)),  # a null element is a zero endpoint
    ('[{"host":"a"},null]', (Endpoint("a"), Endpoint())),
    ('[{"host":null,"network":null,"priority":null}]', (Endpoint(),)),
    # keys match case-insensitively, as Go matches struct fields
    ('[{"HOST":"a","Network":"n","PRIORITY":2}]', (Endpoint("a", "n", 2),)),
    ('[{"hOsT":"a"}]', (Endpoint("a"),)),
    ('[{"networ\u212a":"n"}]', (Endpoint(network="n"),)),  # KELVIN SIGN folds to k
    ('[{"ho\u017ft":"a"}]', (Endpoint("a"),)),  # LATIN SMALL LONG S folds to s
    ('[{"Host":"a","host":"b"}]', (Endpoint("b"),)),  # the last match wins
    ('[{"host":"a","extra":{"x":[1]},"port":8080}]', (Endpoint("a"),)),  # unknown keys
    ('[{"hosts":"a","net":"b"}]', (Endpoint(),)),
    ('[{"priority":-1}]', (Endpoint(priority=-1),)),
    ('[{"priority":-0}]', (Endpoint(),)),
    ('[{"priority":9223372036854775807}]', (Endpoint(priority=2**63 - 1),)),
    ('[{"priority":-9223372036854775808}]', (Endpoint(priority=-(2**63)),)),
    ('[{"host":"<&>","network":"\\u2028"}]', (Endpoint("<&>", "\u2028"),)),
    ('[{"host":"漢"}]', (Endpoint("漢"),)),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED_ENDPOINTS)
def test_parse_endpoints_accepts(text: str, expected: tuple[Endpoint, ...]) -> None:
    assert parse_endpoints(text) == expected


REJECTED_ENDPOINTS = [
    "{}",
    '{"host":"a"}',
    '"[]"',
    "1",
    "true",
    "[",
    "not json",
    "[1]",
    '["a"]',
    "[[]]",
    "[true]",
    '[{"host":"a"},]',
    '[{"host":"a"}] x',
    # wrong field types
    '[{"priority":1.5}]',
    '[{"priority":1.0}]',  # Go will not put 1.0 into an int
    '[{"priority":1e2}]',
    '[{"priority":"1"}]',
    '[{"priority":true}]',
    '[{"priority":[1]}]',
    '[{"priority":{}}]',
    '[{"priority":9223372036854775808}]',  # out of int64 range
    '[{"priority":-9223372036854775809}]',
    '[{"priority":1' + "0" * 5_000 + "}]",
    '[{"host":1}]',
    '[{"host":true}]',
    '[{"host":["a"]}]',
    '[{"network":{}}]',
    '[{"HOST":1}]',
    # Go records a type error for any occurrence of a field and fails the
    # whole Unmarshal, even when a later duplicate would be valid.
    '[{"host":1,"HOST":"a"}]',
    '[{"priority":"x","priority":1}]',
    '[{"host":"a"},{"host":2}]',
]


@pytest.mark.parametrize("text", REJECTED_ENDPOINTS)
def test_parse_endpoints_rejects(text: str) -> None:
    with pytest.raises(EndpointsError):
        parse_endpoints(text)


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        ((), ""),
        ((Endpoint(),), '[{"host":"","network":"","priority":0}]'),
        (
            (Endpoint("a", "internal", 1), Endpoint("b", "external", -2)),
            '[{"host":"a","network":"internal","priority":1},'
            '{"host":"b","network":"external","priority":-2}]',
        ),
        (
            (Endpoint("<a&b>", "\u2028", 2**63 - 1),),
            '[{"host":"\\u003ca\\u0026b\\u003e","network":"\\u2028","priority":9223372036854775807}]',
        ),
    ],
)
def test_normalize_endpoints(endpoints: tuple[Endpoint, ...], expected: str) -> None:
    assert normalize_endpoints(endpoints) == expected


def test_endpoints_round_trip_in_the_servers_key_order() -> None:
    text = '[{"priority":3,"network":"local","host":"h","x":1}, null]'
    out = normalize_endpoints(parse_endpoints(text))
    assert out == (
        '[{"host":"h","network":"local","priority":3},{"host":"","network":"","priority":0}]'
    )
    assert normalize_endpoints(parse_endpoints(out)) == out
