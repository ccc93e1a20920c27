"""Base class of the spec models: camelCase aliases, unknown fields refused, failures raised as
``SpecError`` with every issue and its full field path."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_serializer
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from tuner.spec._issues import SpecError, SpecIssue, child, path_of, short_repr

_Model = TypeVar("_Model", bound="SpecModel")


class SpecModel(BaseModel):
    """A Katib API object: reads camelCase (YAML) or snake_case (Python) field names, refuses
    unknown fields, and raises ``SpecError`` (never a bare ``pydantic.ValidationError``)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SpecError(issues_from_validation_error(e, type(self))) from e

    @classmethod
    def model_validate(cls: type[_Model], obj: Any, *args: Any, **kwargs: Any) -> _Model:
        # pydantic passes a model's input to the (overridden) __init__ as keywords, so a
        # non-string key (YAML's `?` or `1: x`) would end as a bare TypeError: refuse it here.
        keys = _non_string_keys(obj, ())
        if keys:
            raise SpecError(keys)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as e:
            raise SpecError(issues_from_validation_error(e, cls)) from e

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: Any) -> Any:
        # Katib's `omitempty`: unset and empty fields are left out of the Katib form. Only this
        # model's own fields are pruned; free-form content such as trialSpec is kept as is.
        data = handler(self)
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if value not in (None, "", [], {})}

    def to_dict(self) -> dict[str, Any]:
        """The Katib camelCase form with defaults applied, made of plain YAML/JSON values."""
        result: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return result


_MAX_KEY_ISSUES = 10


def _non_string_keys(value: Any, parts: tuple[str | int, ...]) -> list[SpecIssue]:
    """An issue for each mapping key in ``value`` that is not a string (Kubernetes objects
    are JSON, whose keys are strings), at most `_MAX_KEY_ISSUES`."""
    issues: list[SpecIssue] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, parts)]
    while stack and len(issues) < _MAX_KEY_ISSUES:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, child_value in item.items():
                if isinstance(key, str):
                    stack.append((child_value, (*where, key)))
                else:
                    issues.append(
                        SpecIssue(
                            child(path_of(where), short_repr(key)),
                            f"key {short_repr(key)} ({type(key).__name__}) is not a string;"
                            " quote it",
                        )
                    )
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(item))
    return issues


def issues_from_validation_error(error: ValidationError, model: type[BaseModel]) -> list[SpecIssue]:
    """Turn pydantic's errors into issues with Katib field paths and plain-language messages."""
    issues: list[SpecIssue] = []
    for detail in error.errors():
        parts, owner = _walk(model, detail["loc"])
        path = path_of(parts)
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            issues.extend(issue.under(path) for issue in cause.issues)
        else:
            issues.append(SpecIssue(path, _message(detail, owner)))
    return issues


def _message(detail: ErrorDetails, owner: type[BaseModel] | None) -> str:
    kind = detail["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field" + _did_you_mean(owner, detail["loc"][-1])
    text = detail["msg"]
    if kind == "value_error":
        return text.removeprefix("Value error, ")
    text = text[:1].lower() + text[1:]
    return f"{text}, got {short_repr(detail['input'])}"


def _did_you_mean(owner: type[BaseModel] | None, key: str | int) -> str:
    if owner is None or not isinstance(key, str):
        return ""
    known = [field.alias or name for name, field in owner.model_fields.items()]
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _walk(
    model: type[BaseModel], loc: Sequence[str | int]
) -> tuple[list[str | int], type[BaseModel] | None]:
    """Follow an error location down the models: the location with field names spelled as
    Katib's camelCase aliases (whichever spelling the input used), and the model owning the
    last element (None below a free-form dict)."""
    parts: list[str | int] = []
    current: Any = model
    owner: type[BaseModel] | None = None
    for part in loc:
        current = _strip_optional(current)
        owner = current if isinstance(current, type) and issubclass(current, BaseModel) else None
        if owner is not None and isinstance(part, str):
            found = next(
                ((n, f) for n, f in owner.model_fields.items() if part in (n, f.alias)), None
            )
            parts.append(found[1].alias or found[0] if found else part)
            current = found[1].annotation if found else None
        else:
            parts.append(part)
            args = get_args(current)
            origin = get_origin(current)
            current = args[0] if origin is list and args else args[1] if origin is dict else None
    return parts, owner


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _katib_string(value: Any) -> Any:
    # Katib carries settings and feasibleSpace values as strings; YAML authors often write
    # them as numbers. A YAML boolean (true/yes/on) is refused: its spelling is already lost.
    if isinstance(value, bool):
        raise SpecError(
            [
                SpecIssue(
                    "",
                    f"{short_repr(value)} is a YAML boolean (true/false/yes/no/on/off); quote it",
                )
            ]
        )
    if isinstance(value, (int, float)):
        return str(value)
    return value


KatibString = Annotated[str, BeforeValidator(_katib_string)]
"""A string field that also takes a YAML number (Katib's feasibleSpace values, settings)."""
