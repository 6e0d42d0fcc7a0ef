"""The OpenAPI 3.1 description of /api/v1/, served at /api/v1/openapi.json.

The schema is the contract that the schemathesis run checks the live server against: every
constraint written here is enforced by the views, and every answer they give is described.
"""

from __future__ import annotations

from typing import Any

QUERY_MAX_LENGTH = 1000
LANGUAGES = ["en", "de", "cs", "pt", "es"]


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_LANG = {"type": "string", "enum": LANGUAGES}
_NULLABLE_STRING = {"type": ["string", "null"]}

CHECK_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["query"],
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "maxLength": QUERY_MAX_LENGTH,
            "description": "The search text. Never stored or logged.",
        },
        "lang": {**_LANG, "description": "Language of the message; default: the term's."},
    },
}
CHECK_RESPONSE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["match", "category", "message", "help_url", "lang"],
    "properties": {
        "match": {"type": "boolean"},
        "category": {**_NULLABLE_STRING, "description": "The matched term's category."},
        "message": {**_NULLABLE_STRING, "description": "Localised warning and offer of help."},
        "help_url": {
            **_NULLABLE_STRING,
            "description": "Link to the landing page; carries the partner's campaign code only.",
        },
        "lang": _LANG,
    },
}
WIDGET_MESSAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lang", "title", "message", "button", "help_url"],
    "properties": {
        "lang": _LANG,
        "title": {"type": "string"},
        "message": {"type": "string"},
        "button": {"type": "string"},
        "help_url": {"type": "string"},
    },
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _check_operation() -> dict[str, Any]:
    return {
        "operationId": "deterrenceCheck",
        "summary": "Check a search query against the deterrence term lists",
        "security": [{"bearer": []}, {"apiKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Check"}}},
        },
        "responses": {
            "200": {
                "description": "The result; on a match, a warning and a link to help.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CheckResult"}}
                },
            },
            "400": _error_response("The body is not a valid request."),
            "401": _error_response(
                "The API key is missing, unknown or revoked.",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            ),
            "413": _error_response("The body is too large."),
            "429": _error_response(
                "The key's requests per minute are used up.",
                {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
            ),
            "503": _error_response(
                "The service is briefly unavailable: the database is away, or a flood of "
                "unknown keys has used up the key lookups for now (keys already in use are "
                "answered as usual). Retry after the seconds given.",
                {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
            ),
        },
    }


def _widget_operation() -> dict[str, Any]:
    return {
        "operationId": "widgetMessage",
        "summary": "The localised widget text and help link (public, no key)",
        "parameters": [
            {"name": "lang", "in": "query", "required": False, "schema": _LANG},
            {
                "name": "c",
                "in": "query",
                "required": False,
                "description": "Campaign code.",
                "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,31}$"},
            },
        ],
        "responses": {
            "200": {
                "description": "Text for the widget.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/WidgetMessage"}}
                },
            },
            "400": _error_response("An unknown language or a malformed campaign code."),
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stopcsam deterrence API",
            "version": "1.0.0",
            "description": "For partner platforms: check search queries against the deterrence "
            "term lists and show a warning with a way to confidential help. Queries are never "
            "stored; only daily counts of warnings shown are kept. See docs/deterrence.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": {
            "/deterrence/check": {"post": _check_operation()},
            "/widget/message": {"get": _widget_operation()},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Check": CHECK_REQUEST,
                "CheckResult": CHECK_RESPONSE,
                "WidgetMessage": WIDGET_MESSAGE,
                "Error": ERROR,
            },
        },
    }
