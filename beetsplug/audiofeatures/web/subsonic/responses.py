"""The ``subsonic-response`` envelope in XML (the default), JSON
(``f=json``) and JSONP, and the errors of the API.

A body is plain values: in a mapping, a scalar is an XML attribute, a
mapping a child element, a list of mappings repeated child elements,
and ``value`` the element's text (as Subsonic's JSON writes it). Every
error is a ``failed`` envelope with HTTP status 200, as Subsonic servers
answer and its clients expect; only an unknown method is a 404.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

from flask import Response

from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.version import __version__

API_VERSION = "1.16.1"
SERVER_TYPE = "beets-audiofeatures"
XML_NAMESPACE = "http://subsonic.org/restapi"

GENERIC = 0
MISSING_PARAMETER = 10
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
MECHANISM_NOT_SUPPORTED = 42
CONFLICTING_MECHANISMS = 43
INVALID_API_KEY = 44
NOT_AUTHORIZED = 50
NOT_FOUND = 70

#: Characters XML 1.0 cannot hold (a tag may have them): each becomes
#: U+FFFD in XML; JSON escapes them.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
JSONP_CALLBACK = re.compile(r"[A-Za-z_$][\w$.]{0,99}")


class SubsonicError(RequestError):
    """A request the API answers with a ``failed`` envelope (with HTTP's
    200, as the spec asks)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message, status=200)
        self.code = code
        self.message = message


def missing(name: str) -> SubsonicError:
    return SubsonicError(
        MISSING_PARAMETER, f"required parameter {name} is missing"
    )


def not_found(what: str) -> SubsonicError:
    return SubsonicError(NOT_FOUND, f"{what} not found")


def envelope(body: Mapping[str, Any], status: str = "ok") -> dict[str, Any]:
    return {
        "status": status,
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": __version__,
        "openSubsonic": True,
        **body,
    }


def error_body(error: SubsonicError) -> dict[str, Any]:
    return envelope(
        {"error": {"code": error.code, "message": error.message}}, "failed"
    )


def answer(
    document: Mapping[str, Any], form: str, callback: str = ""
) -> Response:
    """The envelope in the format asked for (``xml`` for anything not
    ``json`` or ``jsonp``, so a client always gets a document)."""
    if form in ("json", "jsonp"):
        text = json.dumps(
            {"subsonic-response": without_none(document)}, ensure_ascii=False
        )
        if form == "jsonp" and JSONP_CALLBACK.fullmatch(callback):
            return Response(
                f"{callback}({text});", mimetype="application/javascript"
            )
        return Response(text, mimetype="application/json")
    root = ElementTree.Element("subsonic-response", xmlns=XML_NAMESPACE)
    fill(root, document)
    text = ElementTree.tostring(root, encoding="unicode")
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + text,
        content_type="text/xml; charset=utf-8",
    )


def xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) in (int, float):  # nothing to replace in a number
        return str(value)
    return NOT_XML.sub("\ufffd", str(value))


def fill(element: ElementTree.Element, node: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if value is None:
            continue
        if key == "value":
            element.text = xml_text(value)
        elif isinstance(value, Mapping):
            fill(ElementTree.SubElement(element, key), value)
        elif isinstance(value, list):
            for entry in value:
                child = ElementTree.SubElement(element, key)
                if isinstance(entry, Mapping):
                    fill(child, entry)
                else:  # a list of plain values: each an element's text
                    child.text = xml_text(entry)
        else:
            element.set(key, xml_text(value))


def without_none(node: Any) -> Any:
    """The body as JSON holds it: what is None is left out, as in XML."""
    if type(node) is dict:  # most nodes: no abstract-class check for them
        return {k: without_none(v) for k, v in node.items() if v is not None}
    if type(node) in (str, int, float, bool):
        return node
    if isinstance(node, Mapping):
        return {k: without_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [without_none(v) for v in node]
    return node
