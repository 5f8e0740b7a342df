"""One table per API version maps the control errors to Logplex's statuses and texts."""

from __future__ import annotations

import json

from logrouter.api.logplex_routes import SESSION_ERRORS, V1_ERRORS, V2_ERRORS, V3_ERRORS
from logrouter.errors import BadJson, ConfigError, LimitError, NotFoundError, ValidationError


def test_each_version_answers_in_its_own_words() -> None:
    missing = NotFoundError("channel 9 not found")
    v1 = V1_ERRORS.answer(missing)
    v2 = V2_ERRORS.answer(missing)
    v3 = V3_ERRORS.answer(missing)
    assert v1 is not None and (v1.status, v1.body) == (404, b"Not found")
    assert v2 is not None and (v2.status, json.loads(v2.body)) == (404, {"error": "Not Found"})
    assert v3 is not None and (v3.status, json.loads(v3.body)) == (404, {"error": "not found"})
    session = SESSION_ERRORS.answer(missing)
    assert session is not None and (session.status, json.loads(session.body)) == \
        (422, {"error": "channel not found"})


def test_own_texts_and_overrides_and_what_a_table_leaves_alone() -> None:
    bad = V2_ERRORS.answer(ValidationError("Invalid drain destination: no host"))
    assert bad is not None and json.loads(bad.body) == {"error": "Invalid drain destination: no host"}
    drains = V3_ERRORS.but({LimitError: (422, "maximum number of drains reached")})
    full = drains.answer(LimitError("6 drains"))
    assert full is not None and json.loads(full.body) == {"error": "maximum number of drains reached"}
    plain = V3_ERRORS.answer(LimitError("6 drains"))
    assert plain is not None and json.loads(plain.body) == {"error": "6 drains"}
    garbled = V3_ERRORS.answer(BadJson("x"))
    assert garbled is not None and (garbled.status, json.loads(garbled.body)) == \
        (400, {"error": "invalid payload"})
    assert V3_ERRORS.answer(ConfigError("not an API error")) is None
