"""Profile schemas: the shape of what the LLM writes, the built-in one or any pydantic model.

The built-in :class:`~langchain_stepback_profile.profile.ProfileDraft` (interests, keywords,
style, summary) is the paper's profile. A custom schema (a support agent's customer profile,
a tutor's learner profile) is any pydantic model with at least one field; the LLM fills it,
the package validates, bounds and stores it (``UserProfile.data``), renders it into prompts
and checks its claims against the history like the built-in fields. Instructions, with either
schema, are added to every profile prompt. Both are part of the profile cache key: changing
them rebuilds the profiles at the next refresh.

Example:
    >>> from pydantic import BaseModel, Field
    >>> class Customer(BaseModel):
    ...     preferences: list[str] = Field(default_factory=list, description="what they like")
    ...     constraints: list[str] = Field(default_factory=list, description="what they rule out")
    >>> schema = ProfileSchema.of(Customer, "Note the channel they prefer.")
    >>> schema.builtin, schema.name
    (False, 'Customer')
    >>> schema.validate({"preferences": ["email", "<preference>"]}).preferences
    ['email']
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.profile import (
    MAX_SUMMARY_CHARS,
    MAX_TERMS,
    ProfileDraft,
    UserProfile,
    bounded,
    is_placeholder,
)

_BUILTIN_FORM = (
    '{"interests": ["<topic>", "<topic>"], "keywords": ["<term>", "<term>"], "style": '
    '{"tone": "<tone>", "length": "<typical length>", "structure": "<structure>", '
    '"vocabulary": "<vocabulary>"}, "summary": "<two sentences>"}'
)
_BUILTIN_GUIDE = (
    "interests (research interests or main topics, 3-6 short phrases), keywords (5-10 recurring "
    "terms), style (tone, typical length, structure, vocabulary; a few words each) and summary "
    "(two sentences)"
)
MAX_INSTRUCTIONS_CHARS = 4000


def clean(value: Any) -> Any:
    """A model's answer with template placeholders dropped and text bounded (what the
    built-in profile's validators do, for any schema): lists keep at most ``MAX_TERMS``."""
    if isinstance(value, str):
        return "" if is_placeholder(value) else bounded(value, MAX_SUMMARY_CHARS)
    if isinstance(value, list):
        kept = [clean(v) for v in value if not (isinstance(v, str) and is_placeholder(v))]
        return kept[:MAX_TERMS]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    return value


def _has_content(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(_has_content(v) for v in value)
    if isinstance(value, dict):
        return any(_has_content(v) for v in value.values())
    return value is not None and value is not False


def _placeholder(annotation: Any, description: str) -> Any:
    """A JSON template value for a field: lists as two items, nested models expanded."""
    label = f"<{description or 'value'}>"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _placeholder(options[0], description) if options else label
    if origin in (list, set, tuple) or annotation in (list, set, tuple):
        args = typing.get_args(annotation)
        inner = _placeholder(args[0], description) if args else label
        return [inner, inner]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {
            name: _placeholder(field.annotation, field.description or name.replace("_", " "))
            for name, field in annotation.model_fields.items()
        }
    return label


@dataclass(frozen=True)
class ProfileSchema:
    """A profile schema with its instructions (see the module docstring)."""

    model: type[BaseModel]
    instructions: str = ""

    @classmethod
    def of(cls, model: Any = None, instructions: Any = None) -> ProfileSchema:
        """Validate the arguments of ``profile_schema=`` and ``instructions=``."""
        model = ProfileDraft if model is None or model is UserProfile else model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidArgumentError(
                f"profile_schema must be a pydantic model class (class MyProfile(BaseModel): "
                f"...), got {model!r}"
            )
        if not model.model_fields:
            raise InvalidArgumentError(
                f"profile_schema {model.__name__} has no fields; give it the fields the profile "
                "should hold, each with a description"
            )
        try:
            model.model_json_schema()
        except Exception as err:
            raise InvalidArgumentError(
                f"profile_schema {model.__name__} has no JSON schema ({err}); use JSON types "
                "(str, numbers, bool, lists, nested models)"
            ) from None
        if instructions is None:
            instructions = ""
        if not isinstance(instructions, str):
            raise InvalidArgumentError(
                f"instructions must be a string, got {type(instructions).__name__}"
            )
        if len(instructions) > MAX_INSTRUCTIONS_CHARS:
            raise InvalidArgumentError(
                f"instructions are {len(instructions)} characters; keep them under "
                f"{MAX_INSTRUCTIONS_CHARS} (they are read into every profile prompt)"
            )
        return cls(model, instructions.strip())

    @property
    def builtin(self) -> bool:
        return self.model is ProfileDraft

    @property
    def name(self) -> str:
        """The schema's name as stored with its profiles (empty for the built-in one)."""
        return "" if self.builtin else self.model.__name__

    @property
    def fingerprint(self) -> str:
        """A hash of the schema and instructions; empty for the built-in schema without any."""
        if self.builtin and not self.instructions:
            return ""
        shape = json.dumps(self.model.model_json_schema(), sort_keys=True)
        return hashlib.sha256(f"{shape}\0{self.instructions}".encode()).hexdigest()[:12]

    def prompt_version(self, base: str) -> str:
        """``base`` (the package's prompt version) with the fingerprint: the cache key part."""
        return f"{base}+{self.fingerprint}" if self.fingerprint else base

    # ----------------------------------------------------------------- prompts
    def field_guide(self) -> str:
        """The fields to write, as prompt text."""
        if self.builtin:
            return _BUILTIN_GUIDE
        return ", ".join(
            f"{name} ({field.description})" if field.description else name
            for name, field in self.model.model_fields.items()
        )

    def field_names(self) -> str:
        """What a useful answer has ("interests, keywords or summary")."""
        names = ["interests", "keywords", "summary"] if self.builtin else [*self.model.model_fields]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]

    def json_form(self) -> str:
        """The answer's JSON template, placeholders named after the field descriptions."""
        if self.builtin:
            return _BUILTIN_FORM
        return json.dumps(_placeholder(self.model, ""), ensure_ascii=False)

    def instruction_text(self) -> str:
        if not self.instructions:
            return ""
        return f"\n\nInstructions for this profile: {self.instructions}"

    # ----------------------------------------------------------------- content
    def validate(self, value: Mapping[str, Any]) -> BaseModel:
        """``value`` as an instance of the schema, cleaned (raises ``ValidationError``)."""
        data = dict(value) if self.builtin else clean(dict(value))
        return self.model.model_validate(data)

    def is_empty(self, content: BaseModel) -> bool:
        """True when ``content`` says nothing (a useless answer)."""
        if isinstance(content, ProfileDraft):
            return content.is_empty()
        return not _has_content(content.model_dump(mode="json"))

    def content(self, profile: UserProfile | None) -> BaseModel | None:
        """The stored profile's content in this schema; None when it is in another one."""
        if profile is None:
            return None
        if self.builtin:
            return profile.draft() if profile.data is None else None
        if profile.data is None or profile.schema_name != self.name:
            return None
        try:
            return self.validate(profile.data)
        except ValidationError:
            return None

    def edit(self, base: BaseModel | None, changes: Any) -> tuple[BaseModel, set[str]]:
        """A hand edit (an instance of the schema or a dict of some of its fields) applied to
        ``base``: the new content and the names of the fields it set."""
        fields = set(self.model.model_fields)
        expected = f"{self.model.__name__} or a dict of its fields ({', '.join(fields)})"
        if isinstance(changes, self.model):
            changed = set(changes.model_fields_set) or fields
            values = {name: getattr(changes, name) for name in changed}
        elif isinstance(changes, Mapping):
            values = dict(changes)
            changed = set(values)
        else:
            raise InvalidArgumentError(
                f"a profile edit must be a {expected}, got {type(changes).__name__}"
            )
        unknown = sorted(changed - fields)
        if unknown or not changed:
            raise InvalidArgumentError(
                f"a profile edit sets some of {', '.join(sorted(fields))}; got "
                f"{sorted(changed) or 'nothing'}" + (f" (unknown: {unknown})" if unknown else "")
            )
        merged = {**(base.model_dump() if base is not None else {}), **values}
        try:
            return self.validate(merged), changed
        except ValidationError as err:
            raise InvalidArgumentError(f"invalid profile edit: {err}") from None

    def profile(
        self,
        content: BaseModel,
        *,
        previous: UserProfile | None = None,
        kept: list[str] | None = None,
        **provenance: Any,
    ) -> UserProfile:
        """A stored profile of ``content`` with ``provenance``; the ``kept`` fields (a
        person's edits) are taken from ``previous`` where it holds them."""
        base = self.content(previous)
        kept = [name for name in kept or [] if name in self.model.model_fields]
        if base is not None and kept:
            content = content.model_copy(update={name: getattr(base, name) for name in kept})
        if self.builtin:
            assert isinstance(content, ProfileDraft)
            return UserProfile.from_draft(content, **provenance)
        return UserProfile(
            data=content.model_dump(mode="json"), schema_name=self.name, **provenance
        )
