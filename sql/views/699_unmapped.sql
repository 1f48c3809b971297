-- What live ingest received but could not map, one row per field, with the payload it
-- came in (kept once per payload in unmapped_payloads; before migration 950 this was
-- a table with the payload on every row, and it keeps that table's columns).
-- grain: one row per field of a received payload that no mapping turned into a row
-- columns: payload_sha256, item (position in the payload), received_at timestamptz,
--          transport, source, format, device_id, observed_at timestamp, field, value,
--          unit, reason, payload text
create view unmapped as
select i.*, p.payload
from unmapped_items as i
left join unmapped_payloads as p using (payload_sha256)
