"""JSON Patch / Merge Patch application and changed paths (maxsdk.protocol.patch)."""

from __future__ import annotations

import copy

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxsdk.errors import PatchError
from maxsdk.protocol.patch import apply_patch, changed_paths, check_patch, patch_paths, paths_overlap

KEYS = st.sampled_from(["a", "b", "c", "x/y", "t~1"])
SCALARS = st.one_of(st.integers(-5, 5), st.text("ab", max_size=2), st.booleans())
DOCS = st.recursive(
    SCALARS | st.none(),
    lambda inner: st.dictionaries(KEYS, inner, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, DOCS, max_size=4)
MERGE_PATCHES = st.recursive(
    SCALARS | st.none(),
    lambda inner: st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)

# RFC 7396 Appendix A, every example: (target, patch, result).
RFC7396_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7396_EXAMPLES)
def test_merge_patch_matches_rfc7396_appendix_a(target, patch, result):
    before = copy.deepcopy(target)
    assert apply_patch(target, "merge", patch) == result
    assert target == before  # never modified in place


def test_json_patch_rfc6902_appendix_a_examples():
    assert apply_patch({"foo": "bar"}, "json", [{"op": "add", "path": "/baz", "value": "qux"}]) == {
        "foo": "bar",
        "baz": "qux",
    }
    assert apply_patch({"foo": ["bar", "baz"]}, "json", [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"]
    }
    moved = apply_patch(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        "json",
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
    )
    assert moved == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    assert apply_patch({"foo": ["bar"]}, "json", [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]) == {
        "foo": ["bar", ["abc", "def"]]
    }


@pytest.mark.parametrize(
    ("document", "patch"),
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),  # RFC 6902 A.9
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),  # A.12
        ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}]),
        ({"foo": [1]}, [{"op": "replace", "path": "/foo/5", "value": 2}]),
        ({}, {"op": "add"}),  # not a list
        ({}, [{"op": "frobnicate", "path": "/a"}]),
        ({}, [{"op": "add", "path": "/a"}]),  # no value
        ({}, [{"op": "move", "path": "/a"}]),  # no from
    ],
)
def test_json_patch_that_does_not_apply_raises_patch_error_and_leaves_the_document(document, patch):
    before = copy.deepcopy(document)
    with pytest.raises(PatchError) as info:
        apply_patch(document, "json", patch)
    assert info.value.op == "json"
    assert isinstance(info.value, ValueError)
    assert document == before


def test_unknown_format_is_refused():
    with pytest.raises(PatchError, match="unknown patch kind"):
        apply_patch({}, "xml", {})
    with pytest.raises(PatchError):
        check_patch("yaml", {})


@settings(max_examples=300, deadline=None)
@given(OBJECTS, MERGE_PATCHES)
def test_merge_patch_is_idempotent_and_its_paths_cover_every_change(document, patch):
    once = apply_patch(document, "merge", patch)
    assert apply_patch(once, "merge", patch) == once
    written = patch_paths("merge", patch)
    for path in changed_paths(document, once):
        assert paths_overlap([path], written), (path, written)


@settings(max_examples=300, deadline=None)
@given(DOCS, DOCS)
def test_a_json_patch_from_a_diff_turns_one_document_into_the_other(old, new):
    operations = jsonpatch.make_patch(old, new).patch
    assert apply_patch(old, "json", operations) == new
    written = patch_paths("json", operations)
    for path in changed_paths(old, new):
        assert paths_overlap([path], written), (path, written)


@settings(max_examples=300, deadline=None)
@given(DOCS, DOCS)
def test_changed_paths_is_empty_exactly_when_documents_are_equal(old, new):
    paths = changed_paths(old, new)
    assert (paths == ()) == (old == new and _same_types(old, new))
    if old != new:
        assert paths


def _same_types(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b))
    return True


def test_changed_paths_are_escaped_json_pointers():
    assert changed_paths({"a/b": 1, "c~d": {"e": 1}}, {"a/b": 2, "c~d": {"e": 1, "f": 0}}) == ("/a~1b", "/c~0d/f")
    assert changed_paths(1, True) == ("",)
    assert changed_paths([1, 2], [1]) == ("/1",)
    assert patch_paths("merge", {"a": {"b": None, "c": {}}, "d/e": 1}) == ("/a/b", "/a/c", "/d~1e")
    operations = [{"op": "test", "path": "/a", "value": 1}, {"op": "move", "from": "/b", "path": "/c"}]
    assert patch_paths("json", operations) == ("/b", "/c")
