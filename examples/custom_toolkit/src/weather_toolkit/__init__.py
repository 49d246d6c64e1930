"""An example AgenTool package: `weather` reports a (made-up, deterministic) forecast for a city."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentool_bridge import AgenTool, BaseOperationInput, RoutingConfig, register_agentool

__all__ = ["WeatherInput", "create_weather_agent"]


class WeatherInput(BaseOperationInput):
    """Weather forecasts for a city."""

    operation: Literal["forecast"] = Field(description="The operation to perform.")
    city: str = Field(min_length=1, max_length=100, description="City name, e.g. 'Berlin'.")
    days: int = Field(default=1, ge=1, le=7, description="Days to forecast.")


async def forecast(city: str, days: int) -> dict[str, object]:
    # Deterministic so that examples and tests need no network.
    base = sum(map(ord, city)) % 15
    return {"city": city, "forecast": [{"day": d + 1, "celsius": base + d} for d in range(days)]}


def create_weather_agent() -> AgenTool:
    """Entry-point factory: register the `weather` AgenTool."""
    return register_agentool(
        "weather",
        WeatherInput,
        RoutingConfig(operation_map={"forecast": ("forecast", lambda m: {"city": m.city, "days": m.days})}),
        [forecast],
        tags=("example",),
        examples=({"operation": "forecast", "city": "Berlin", "days": 2},),
    )
