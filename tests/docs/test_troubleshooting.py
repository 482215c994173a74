"""Every error class has a troubleshooting entry (the page is generated from maxsdk.errors)."""

from __future__ import annotations

import maxsdk
from maxsdk import errors
from tests.docs.helpers import docs_extension

docs = docs_extension()


def test_every_error_class_has_a_complete_entry():
    assert docs.troubleshooting_problems() == []


def test_the_list_comes_from_the_errors_module():
    names = {cls.__name__ for cls in docs.error_classes()}
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    }
    assert defined <= names
    exported = {
        n
        for n in maxsdk.__all__
        if isinstance(getattr(maxsdk, n), type) and issubclass(getattr(maxsdk, n), errors.MaxsdkError)
    }
    assert exported <= names  # ModelError lives in maxsdk.models but is a public error too


def test_a_missing_or_incomplete_entry_is_reported():
    entries = docs.load_entries()
    entries.pop("ReplyLostError")
    entries["ReplyError"] = "**Usual cause.** something"
    entries["NoSuchError"] = "**Usual cause.** x\n**What to do.** y"
    problems = docs.troubleshooting_problems(entries)
    assert "ReplyLostError has no troubleshooting entry in docs/_data/errors.md" in problems
    assert "the troubleshooting entry of ReplyError lacks **What to do.**" in problems
    assert any("NoSuchError" in p for p in problems)


def test_the_generated_page_follows_the_source_order_and_uses_the_docstrings():
    page = docs.troubleshooting_markdown()
    assert page.index("### `MaxsdkError`") < page.index("### `ReplyTimeoutError`") < page.index("### `ReplyLostError`")
    assert "The push was sent but its connection or channel went away before a reply." in page
