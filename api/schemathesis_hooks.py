"""What schemathesis cannot read from api/openapi.yaml alone, for the end-to-end run
(scripts/e2e-local loads it with SCHEMATHESIS_HOOKS):

- `format: isbn`: an ISBN's checksum is no pattern; valid ones are drawn here, ISBN-10 or -13,
  with or without hyphens or spaces, as the description says the API accepts;
- `published_year`'s upper bound is next year, as the description says in words: a static
  document cannot hold it, so it is set when the document is loaded;
- a `PUT` body's `id`, when there is one, must be the URL's: set so in the requests meant valid.
"""

import datetime

import schemathesis
from hypothesis import strategies as st


def _isbn13(digits):
    body = "978" + "".join(map(str, digits[:9]))
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def _isbn10(digits):
    body = "".join(map(str, digits[:9]))
    check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11) % 11
    return body + ("X" if check == 10 else str(check))


@st.composite
def isbns(draw):
    digits = draw(st.lists(st.integers(0, 9), min_size=9, max_size=9))
    isbn = draw(st.sampled_from([_isbn13, _isbn10]))(digits)
    separator = draw(st.sampled_from(["", "-", " "]))
    if separator:
        cut = draw(st.integers(1, len(isbn) - 1))
        isbn = isbn[:cut] + separator + isbn[cut:]
    return isbn


schemathesis.openapi.format("isbn", isbns())


@schemathesis.hook
def before_load_schema(context, raw_schema):
    draft = raw_schema["components"]["schemas"]["BookDraft"]["properties"]
    draft["published_year"]["maximum"] = datetime.datetime.now(datetime.timezone.utc).year + 1


@schemathesis.hook
def before_call(context, case, **kwargs):
    """A `PUT` body's `id`, when it has one, is the URL's (the description's rule): so it is in
    the requests meant to be valid."""
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and case.method == "PUT" and isinstance(case.body, dict) and "id" in case.body:
        case.body["id"] = case.path_parameters["id"]


def _alike(text):
    """An author's or tag's lookup key, as the API compares them (functions/books: lookup_key)."""
    return " ".join(text.split()).lower()


@schemathesis.hook("before_call")
def distinct_authors_and_tags(context, case, **kwargs):
    """Authors and tags, none alike apart from case and spacing (the description's rule): a
    request meant valid keeps the first of those alike."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    for field in ("authors", "tags"):
        items = case.body.get(field)
        if isinstance(items, list) and all(isinstance(item, str) for item in items):
            seen, kept = set(), []
            for item in items:
                if _alike(item) not in seen:
                    seen.add(_alike(item))
                    kept.append(item)
            case.body[field] = kept
