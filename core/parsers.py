"""The API's JSON parser: DRF's, with a body nested past Python's recursion limit refused as a 400."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """`[[[[...]]]]` a hundred thousand deep makes the json module raise RecursionError, which DRF does
    not catch (a 500). No field of this API nests more than a few levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
