-- De-duplication of whole live payloads in quarantine, by a hash of the full payload.
-- A live payload that cannot be decoded is quarantined once per reason, however often
-- it is redelivered; the key below (an index) is what a batch checks, so the cost does
-- not grow with the quarantine, and two payloads that differ only after the text kept
-- in quarantine.raw (cut at 16 KiB) are two entries.
create table quarantine_payloads (
    payload_sha256 varchar not null,
    reason         varchar not null,
    batch_id       bigint not null,
    primary key (payload_sha256, reason)
);
comment on table quarantine_payloads is 'Grain: one row per distinct rejected live payload (SHA-256 of all its bytes, hex) and reason. batch_id is the ingest batch whose quarantine row holds it (kind = payload).';
