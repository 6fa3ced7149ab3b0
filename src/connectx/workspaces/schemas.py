"""Request and response bodies of the workspaces API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class WorkspaceIn(BaseModel):
    name: str = Field(max_length=1000, description="Business name.")
    address: str | None = Field(default=None, max_length=2000)
    phone: str | None = Field(
        default=None, max_length=40, description="International form, e.g. +971501234567."
    )


class WorkspacePatch(BaseModel):
    """Only the fields sent are changed; send null (or "") to clear address or phone."""

    name: str | None = Field(default=None, max_length=1000)
    address: str | None = Field(default=None, max_length=2000)
    phone: str | None = Field(default=None, max_length=40)


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime


class MyWorkspaceOut(BaseModel):
    id: int
    name: str
    role: str
    current: bool


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    email: str
    role: str
    joined_at: datetime


class RoleIn(BaseModel):
    role: str = Field(max_length=20, description="owner, admin, agent or analyst.")


class InvitationIn(BaseModel):
    email: str = Field(max_length=320)
    role: str = Field(default="agent", max_length=20)


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    status: str
    created_at: datetime
    expires_at: datetime


class InvitationForMeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    workspace_id: int
    workspace_name: str
    role: str
    expires_at: datetime


class AcceptIn(BaseModel):
    token: str = Field(max_length=200, description="The token of the invitation link.")


class ApiKeyIn(BaseModel):
    name: str = Field(max_length=1000)
    scopes: list[str] = Field(default_factory=lambda: ["read"], max_length=10)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. It is shown this once and never again.")


class MeUser(BaseModel):
    id: int
    name: str


class MeKey(BaseModel):
    id: int
    name: str
    scopes: list[str]


class MeWorkspace(BaseModel):
    id: int
    name: str


class MeOut(BaseModel):
    kind: str = Field(description="'user' (session cookie) or 'api_key' (Bearer).")
    user: MeUser | None
    api_key: MeKey | None
    workspace: MeWorkspace | None
    role: str | None = Field(description="The caller's role in the workspace (people only).")
    scopes: list[str] = Field(description="The API key's scopes (empty for people).")
