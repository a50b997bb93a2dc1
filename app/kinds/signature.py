"""What every kind's card signature shares: fields beyond the typed ones are kept as given
(a card may carry its own notes), and a signature is stored exactly as the card wrote it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

Count = Annotated[StrictInt, Field(ge=1)]


class Signature(BaseModel):
    model_config = ConfigDict(extra="allow")

    def as_dict(self) -> dict[str, Any]:
        """The signature as the card gave it: no defaults filled in, extra fields kept."""
        return self.model_dump(mode="json", exclude_unset=True)
