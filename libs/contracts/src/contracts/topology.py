"""Names and message conventions on the broker, shared by publisher and consumers.

orders' outbox relay publishes each event to the durable topic exchange
ORDER_EVENTS_EXCHANGE with routing key = event type, so a consumer binds `order.*`
for all order events. Every message is persistent and carries:

- body: the event envelope as JSON (contracts.events), content type application/json
- message_id: the event id (consumers deduplicate on it)
- type: the event type
- headers[SCHEMA_VERSION_HEADER]: the envelope version
Each consumer owns its own queues (names live in the consumer's package).
"""

from __future__ import annotations

from typing import Final

ORDER_EVENTS_EXCHANGE: Final = "orders.events"  # durable topic exchange

ORDER_CREATED: Final = "order.created"
ORDER_CONFIRMED: Final = "order.confirmed"
ORDER_CANCELLED: Final = "order.cancelled"
ALL_ORDER_EVENTS: Final = "order.*"

SCHEMA_VERSION_HEADER: Final = "x-schema-version"
