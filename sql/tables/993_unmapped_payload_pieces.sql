-- Session 26: the payloads with unmapped fields keep their text in text_pieces too (see
-- 991). In the hostile soak's mix they held as much text as quarantine (84 MB per 600 s
-- in 28,000 rows), and at 28,000 rows per 600 s their last row group stayed open for 40
-- minutes, so the rows a checkpoint merged at once kept growing.
--
-- unmapped_payloads becomes a view of the same columns (sql/views/698_unmapped_payloads.sql)
-- over unmapped_payload_rows: payload is there for the rows stored before, and NULL with
-- payload_text_id for a new one, whose text is in text_pieces.
create table unmapped_payload_rows (
    payload_sha256  varchar not null,
    payload         varchar,
    payload_text_id bigint,
    check ((payload is null) <> (payload_text_id is null))
);
insert into unmapped_payload_rows select payload_sha256, payload, NULL from unmapped_payloads;
drop table unmapped_payloads;

comment on table unmapped_payload_rows is 'Grain: one row per received payload with unmapped fields (SHA-256 of all its bytes, hex); the table behind the view unmapped_payloads, which shows payload whole. payload the payload as received (text, or base64: followed by base64 for binary), cut at 16 KiB with the number of bytes received; NULL when the text is in text_pieces under payload_text_id.';
